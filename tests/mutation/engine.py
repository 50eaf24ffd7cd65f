"""The mutants of every exercise's reference solution, made from the source lessons.

A mutant is the reference solution cell with one change of one operator
(:mod:`tests.mutation.operators`) at one place inside its ``### BEGIN SOLUTION``
blocks, handed in as a student would hand it in (markers gone). Its id,
``NN-exercise-operator-k``, counts the places of one operator in one exercise in
source order: it stays the same while the reference does; the fingerprint (a
digest of the mutant's source) says when a reviewed verdict no longer applies.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import libcst as cst
from libcst.metadata import MetadataWrapper, ParentNodeProvider, PositionProvider

from course_lib.selfstudy.exercises import Exercise, lesson_exercises

from .operators import CLASSIC, CONCURRENCY, OPERATORS, Site, dotted

__all__ = ["Mutant", "solution_lines", "strip_markers", "sync_names", "mutants_of_cell", "exercise_mutants",
           "lesson_mutants", "all_mutants", "fingerprint", "LESSONS"]

REPO = Path(__file__).resolve().parents[2]
LESSONS = sorted(p.name for p in (REPO / "notebooks").iterdir() if re.match(r"\d\d-", p.name))
MARKER = re.compile(r"^\s*### (BEGIN|END) SOLUTION\s*$")
SYNC_TYPES = {"Lock", "RLock", "Condition", "Semaphore", "BoundedSemaphore"}
NOT_LOCKS = re.compile(r"(^|\.)(sock|conn|socket|connection|listener|lines|selector|writer|reader|s|f)$")


@dataclass(frozen=True)
class Mutant:
    id: str
    lesson: str
    exercise: str
    grade_id: str       # the solution cell it changes
    operator: str
    description: str
    line: int           # where, in the cell (from 1)
    original: str       # the reference cell, markers gone
    source: str         # the mutated cell

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.source)

    def diff(self) -> str:
        return "".join(difflib.unified_diff(self.original.splitlines(True), self.source.splitlines(True),
                                            f"{self.grade_id} (reference)", f"{self.id}", n=1))


def fingerprint(source: str) -> str:
    return hashlib.sha256(source.encode()).hexdigest()[:10]


def solution_lines(source: str) -> set[int]:
    """The lines (from 1) between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` markers."""
    inside, lines = False, set()
    for number, line in enumerate(source.splitlines(), 1):
        marker = MARKER.match(line)
        if marker:
            inside = marker.group(1) == "BEGIN"
        elif inside:
            lines.add(number)
    return lines


def strip_markers(source: str) -> str:
    return "".join(line for line in source.splitlines(True) if not MARKER.match(line))


def sync_names(module: cst.Module) -> frozenset:
    """Names of the cell's locks: assigned a threading lock, condition or semaphore, or taken by
    a ``with`` on a plain name that is not a socket, a file or a stream."""
    found = set()

    class Finder(cst.CSTVisitor):
        def visit_Assign(self, node):
            value = node.value
            if isinstance(value, cst.Call) and (dotted(value.func) or "").split(".")[-1] in SYNC_TYPES:
                for target in node.targets:
                    if dotted(target.target):
                        found.add(dotted(target.target))

        def visit_WithItem(self, node):
            name = dotted(node.item)
            if name and not NOT_LOCKS.search(name):
                found.add(name)

    module.visit(Finder())
    return frozenset(found)


class _Replace(cst.CSTTransformer):
    def __init__(self, replacements: dict):
        self.replacements = replacements

    def on_leave(self, original, updated):
        for old, new in self.replacements.items():
            if original is old:
                return new
        return updated


def _all_nodes(module):
    nodes = []

    class Collect(cst.CSTVisitor):
        def on_visit(self, node):
            nodes.append(node)
            return True

    module.visit(Collect())
    return nodes


def mutants_of_cell(source: str, *, lesson: str, exercise: str, grade_id: str,
                    operators: list[str]) -> list[Mutant]:
    """Every mutant of one solution cell that compiles and differs from the others."""
    region = solution_lines(source)
    module = cst.parse_module(source)
    wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
    positions = wrapper.resolve(PositionProvider)
    parents = wrapper.resolve(ParentNodeProvider)
    locks = sync_names(module)
    original = strip_markers(source)
    seen = {original}
    made = []
    counters: dict[str, int] = {}

    def in_async(node):
        while node is not None:
            if isinstance(node, cst.FunctionDef):
                return node.asynchronous is not None
            node = parents.get(node)
        return False

    for node in _all_nodes(module):
        if node not in positions or positions[node].start.line not in region or isinstance(node, cst.Module):
            continue
        parent = parents.get(node)
        site = Site(node=node, parent=parent, sync_names=locks, in_async=in_async(node),
                    grandparent=parents.get(parent) if parent is not None else None)
        for name in operators:
            for description, replacement in OPERATORS[name](site):
                replacements = replacement if isinstance(replacement, dict) else {node: replacement}
                try:
                    mutated = strip_markers(module.visit(_Replace(replacements)).code)
                    compile(mutated, grade_id, "exec")
                except Exception:  # not valid Python (an empty block, a removed keyword): no mutant
                    continue
                if mutated in seen:
                    continue
                seen.add(mutated)
                counters[name] = counters.get(name, 0) + 1
                made.append(Mutant(id=f"{lesson[:2]}-{exercise}-{name}-{counters[name]}", lesson=lesson,
                                   exercise=exercise, grade_id=grade_id, operator=name,
                                   description=description, line=positions[node].start.line,
                                   original=original, source=mutated))
    return made


# Exercises about threads get the concurrency operators and the classic ones for their input
# checks; the others (parsing, classifying, predictions, schedules) get the classic ones only.
NOT_ABOUT_THREADS = {"speedup", "classify_address", "parse_host_port"}


# In code about threads the classic operators that change a condition stay (a wait's loop, a
# check before an action, an input rule); constants, strings and arithmetic go to the others.
CONDITIONS = {"compare", "branch"}


def exercise_operators(exercise: Exercise) -> list[str]:
    answers_only = all(not re.search(r"^\s*(def|class) ", s, re.M) for s in exercise.solution_sources)
    if answers_only or exercise.name in NOT_ABOUT_THREADS:
        return sorted(CLASSIC)
    return sorted(CONCURRENCY | CONDITIONS)


def exercise_mutants(exercise: Exercise) -> list[Mutant]:
    operators = exercise_operators(exercise)
    made = []
    for grade_id, source in zip(exercise.solutions, exercise.solution_sources):
        made += mutants_of_cell(source, lesson=exercise.lesson, exercise=exercise.name, grade_id=grade_id,
                                operators=operators)
    # ids count per exercise, across its cells
    counters: dict[str, int] = {}
    renumbered = []
    for mutant in made:
        counters[mutant.operator] = counters.get(mutant.operator, 0) + 1
        renumbered.append(Mutant(**{**mutant.__dict__,
                                    "id": f"{exercise.lesson[:2]}-{exercise.name}-{mutant.operator}-"
                                          f"{counters[mutant.operator]}"}))
    return renumbered


def lesson_mutants(lesson: str, notebooks: Path | None = None) -> list[Mutant]:
    return [m for exercise in lesson_exercises(lesson, notebooks) for m in exercise_mutants(exercise)]


def all_mutants(lessons=None) -> list[Mutant]:
    return [m for lesson in (lessons or LESSONS) for m in lesson_mutants(lesson)]
