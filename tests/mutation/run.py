"""``make mutants``: grade every mutant of every exercise and write the table.

    python -m tests.mutation.run [--lessons 03 09] [--only ID ...] [--out build/mutants] [--jobs 2] [--readme]

Every mutant (tests/mutation/engine.py) is one student of a ``course grade`` batch per
lesson (tests/mutation/grading.py), beside one control student per exercise. A mutant is
*killed* when its exercise loses points, *equivalent* when tests/mutation/equivalent.txt
says why it cannot (its fingerprint must still match), and *surviving* otherwise.
Writes OUT/verdicts.json (one entry a mutant) and OUT/table.md; ``--readme`` puts the
table into README.md between its mutation-table markers. A benchmark-like job: the full run took 42 min
(567 mutants and 37 controls) on 2 cores shared with other work; resumable (a batch already graded is read, not redone).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

from course_lib.selfstudy.exercises import lesson_exercises

from .engine import LESSONS, REPO, Mutant, all_mutants
from .grading import Variant, control, grade_variants
from .reviewed import equivalents

__all__ = ["main", "classify", "table", "update_readme", "mutant_variant"]

TABLE_BEGIN = "<!-- mutation table: written by `make mutants` -->"
TABLE_END = "<!-- end of the mutation table -->"


def mutant_variant(mutant: Mutant) -> Variant:
    return Variant(student=mutant.id, lesson=mutant.lesson, exercise=mutant.exercise,
                   cells={mutant.grade_id: mutant.source})


def classify(mutant: Mutant, verdict, reviewed: dict) -> str:
    """killed, equivalent, surviving, or stale (listed equivalent, but the mutant changed)."""
    entry = reviewed.get(mutant.id)
    if verdict is not None and verdict.status in ("rejected", "tampered", "error"):
        return verdict.status            # not a verdict on the tests: the run says so
    if verdict is not None and verdict.lost_points:
        return "killed"
    if entry is not None:
        return "equivalent" if entry.fingerprint == mutant.fingerprint else "stale"
    return "surviving"


def table(rows: list[dict]) -> str:
    """The per-exercise table: made, killed, equivalent, surviving, kill rate of the others."""
    by_exercise: dict[tuple, dict] = {}
    for row in rows:
        key = (row["lesson"], row["exercise"])
        counts = by_exercise.setdefault(key, {"made": 0, "killed": 0, "equivalent": 0, "surviving": 0})
        counts["made"] += 1
        kind = row["kind"] if row["kind"] in counts else "surviving"
        counts[kind] += 1
    lines = ["| lesson | exercise | made | killed | equivalent | surviving | killed of non-equivalent |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    total = {"made": 0, "killed": 0, "equivalent": 0, "surviving": 0}
    for (lesson, exercise), c in sorted(by_exercise.items()):
        for k in total:
            total[k] += c[k]
        rest = c["made"] - c["equivalent"]
        rate = f"{100 * c['killed'] / rest:.0f} %" if rest else "–"
        lines.append(f"| {lesson[:2]} | {exercise} | {c['made']} | {c['killed']} | {c['equivalent']} | "
                     f"{c['surviving']} | {rate} |")
    rest = total["made"] - total["equivalent"]
    lines.append(f"| | **all** | {total['made']} | {total['killed']} | {total['equivalent']} | "
                 f"{total['surviving']} | {100 * total['killed'] / rest:.1f} % |" if rest else "")
    return "\n".join(lines) + "\n"


def update_readme(text: str, readme: Path = REPO / "README.md") -> None:
    content = readme.read_text(encoding="utf-8")
    start, end = content.index(TABLE_BEGIN) + len(TABLE_BEGIN), content.index(TABLE_END)
    readme.write_text(content[:start] + "\n" + text + content[end:], encoding="utf-8")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.mutation.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--lessons", nargs="*", help="lesson numbers or ids (default: all)")
    parser.add_argument("--only", nargs="*", help="mutant ids (default: all of the lessons)")
    parser.add_argument("--out", type=Path, default=REPO / "build" / "mutants")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--readme", action="store_true", help="write the table into README.md")
    parser.add_argument("--table-from", nargs="+", type=Path, metavar="VERDICTS_JSON",
                        help="grade nothing: the table from earlier runs' verdicts.json (a later file's "
                             "verdict of a mutant replaces an earlier one's), classified again")
    args = parser.parse_args(argv)
    if args.table_from:
        return table_from(args.table_from, readme=args.readme, out=args.out)
    lessons = [l for l in LESSONS if not args.lessons or l in args.lessons or l[:2] in args.lessons]
    reviewed = equivalents()
    started = time.monotonic()
    rows = []
    for lesson in lessons:
        mutants = [m for m in all_mutants([lesson]) if not args.only or m.id in args.only]
        if not mutants:
            continue
        variants = [control(lesson, e.name) for e in lesson_exercises(lesson)
                    if any(m.exercise == e.name for m in mutants)]
        variants += [mutant_variant(m) for m in mutants]
        verdicts = grade_variants(variants, args.out / lesson[:2], jobs=args.jobs)
        failed_by_control = {}   # exercise -> tests the reference itself failed this run
        for v in variants[: len(variants) - len(mutants)]:
            verdict = verdicts[v.student]
            if not verdict.full_marks:
                failed_by_control[v.exercise] = {f.split(":")[0] for f in verdict.failed} or {"*"}
                print(f"CONTROL FAILED {v.student}: {verdict.points}/{verdict.max_points} {verdict.status} "
                      f"{verdict.failed}", file=sys.stderr)
        for mutant in mutants:
            verdict = verdicts.get(mutant.id)
            broken = failed_by_control.get(mutant.exercise, set())
            if verdict is not None and broken:
                # Only a test the reference passed can kill: a mutant that failed no other is unjudged.
                if "*" in broken or {f.split(":")[0] for f in verdict.failed} <= broken:
                    verdict = None
            rows.append({"id": mutant.id, "lesson": lesson, "exercise": mutant.exercise,
                         "operator": mutant.operator, "description": mutant.description, "line": mutant.line,
                         "fingerprint": mutant.fingerprint, "kind": classify(mutant, verdict, reviewed),
                         "verdict": asdict(verdict) if verdict else None, "diff": mutant.diff()})
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "verdicts.json").write_text(json.dumps(rows, indent=1))
        (args.out / "table.md").write_text(table(rows))
    text = table(rows)
    print(text)
    for row in rows:
        if row["kind"] != "killed" and row["kind"] != "equivalent":
            print(f"{row['kind'].upper()} {row['id']} {row['fingerprint']}: {row['description']} "
                  f"(line {row['line']})")
    if args.readme:
        update_readme(text)
    print(f"{len(rows)} mutants in {time.monotonic() - started:.0f} s")
    return 0


def table_from(paths: list[Path], *, readme: bool, out: Path) -> int:
    """The table of every mutant the engine makes now, from verdicts graded earlier.

    A strengthened test only adds checks, so a mutant killed once stays killed: a run of the
    survivors alone, listed after the full run, gives the table of the full set. A mutant with
    no verdict (the engine makes it, no run graded it) is counted as surviving.
    """
    from .grading import Verdict

    graded = {}
    for path in paths:
        for row in json.loads(Path(path).read_text()):
            if row.get("verdict"):
                graded[(row["id"], row["fingerprint"])] = row["verdict"]   # a changed mutant: graded anew
    reviewed = equivalents()
    rows = []
    for mutant in all_mutants():
        key = (mutant.id, mutant.fingerprint)
        verdict = Verdict(**graded[key]) if key in graded else None
        rows.append({"id": mutant.id, "lesson": mutant.lesson, "exercise": mutant.exercise,
                     "operator": mutant.operator, "description": mutant.description, "line": mutant.line,
                     "fingerprint": mutant.fingerprint, "kind": classify(mutant, verdict, reviewed),
                     "verdict": graded.get(key), "diff": mutant.diff()})
    out.mkdir(parents=True, exist_ok=True)
    (out / "verdicts-merged.json").write_text(json.dumps(rows, indent=1))
    text = table(rows)
    (out / "table.md").write_text(text)
    print(text)
    for row in rows:
        if row["kind"] not in ("killed", "equivalent"):
            print(f"{row['kind'].upper()} {row['id']} {row['fingerprint']}: {row['description']} (line {row['line']})")
    if readme:
        update_readme(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
