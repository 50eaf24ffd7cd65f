"""autograder.collect: a learning platform's ZIP into nbgrader's submitted/ layout."""

from __future__ import annotations

import hashlib
import os
import tempfile
import zipfile
from pathlib import Path

import pytest

from autograder import collect
from autograder.collect import DEFAULT_PATTERN, MOODLE_PATTERN, collect_zip
from autograder.grade import discover
from autograder.lessons import CourseError

LESSON = "01-processes-and-threads"
NB = f"{LESSON}.ipynb"
OLD = (2026, 11, 20, 9, 0, 0)
NEW = (2026, 11, 21, 9, 0, 0)


def make_zip(path: Path, files: dict[str, bytes | tuple[bytes, tuple]]) -> Path:
    """Write a ZIP whose members are ``name: bytes`` or ``name: (bytes, date_time)``."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, value in files.items():
            data, when = value if isinstance(value, tuple) else (value, OLD)
            archive.writestr(zipfile.ZipInfo(name, when), data)
    return path


def tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (but nbgrader's timestamp.txt) with its bytes."""
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name not in ("timestamp.txt", "LATE.txt")}


@pytest.fixture
def class_zip(tmp_path):
    inner = tmp_path / "inner.zip"
    make_zip(inner, {"x.ipynb": b"inner"})
    return make_zip(tmp_path / "download.zip", {
        f"alice_1001_{LESSON}.ipynb": b"alice",
        "bob_1002_my homework.ipynb": b"bob",                        # any uploaded name
        "week1/carol_1003_55501_lesson.ipynb": b"carol",              # nested folder, Canvas submission id
        "dave_LATE_1004_55502_01.ipynb": b"dave",                     # Canvas's late marker
        "erin_1005_notes.txt": b"not a notebook",
        "erin_1005_bundle.zip": inner.read_bytes(),                  # archives inside are not opened
        "README.ipynb": b"matches nothing",
        "__MACOSX/._alice_1001_x.ipynb": b"resource fork",
    })


def test_each_student_lands_in_nbgrader_layout_under_the_lesson_name(class_zip, tmp_path):
    """Does every matching notebook land in submitted/<student>/<lesson>/<lesson>.ipynb, bytes intact?"""
    out = tmp_path / "submitted"
    result = collect_zip(class_zip, out, lesson="01")

    assert tree(out) == {f"{s}/{LESSON}/{NB}": s.encode() for s in ("alice", "bob", "carol", "dave")}
    assert [s for s, _ in result.collected] == ["alice", "bob", "carol", "dave"]
    assert all(path == out / s / LESSON / NB for s, path in result.collected)
    assert result.lesson == LESSON


def test_files_not_collected_are_listed_with_why(class_zip, tmp_path):
    """Are the non-notebook, the inner archive and the unmatched names listed rather than dropped?"""
    result = collect_zip(class_zip, tmp_path / "submitted", lesson=LESSON)

    assert result.unmatched == ["README.ipynb", "__MACOSX/._alice_1001_x.ipynb",
                                "erin_1005_bundle.zip", "erin_1005_notes.txt"]
    assert result.why["README.ipynb"] == "no match for the file-name pattern"
    assert result.why["erin_1005_notes.txt"] == "not a notebook"
    assert result.why["erin_1005_bundle.zip"] == "not a notebook"
    text = result.summary()
    assert "collected 4 submission(s)" in text
    assert "4 file(s) of download.zip not collected" in text and "erin_1005_notes.txt: not a notebook" in text


def test_the_zip_is_never_modified(class_zip, tmp_path):
    """Are the ZIP's bytes and modification time the same after collecting (twice, with force)?"""
    before = (hashlib.sha256(class_zip.read_bytes()).hexdigest(), class_zip.stat().st_mtime_ns)
    collect_zip(class_zip, tmp_path / "submitted", lesson=LESSON)
    collect_zip(class_zip, tmp_path / "submitted", lesson=LESSON, force=True)
    after = (hashlib.sha256(class_zip.read_bytes()).hexdigest(), class_zip.stat().st_mtime_ns)
    assert after == before


def test_grading_finds_what_was_collected(class_zip, tmp_path):
    """Does `course grade`'s discovery see one job per collected student and no error rows?"""
    out = tmp_path / "submitted"
    collect_zip(class_zip, out, lesson=LESSON)
    found, lessons = discover(out)
    assert [(s, l) for s, l, _ in found.jobs] == [(s, LESSON) for s in ("alice", "bob", "carol", "dave")]
    assert found.rows == [] and lessons == [LESSON]


def test_the_newer_of_two_submissions_wins_by_zip_time(tmp_path):
    """With two notebooks from one student, is the newer kept even when its name sorts first?"""
    zip_path = make_zip(tmp_path / "d.zip", {
        "alice_1_a.ipynb": (b"second try", NEW),
        "alice_1_b.ipynb": (b"first try", OLD),
        "bob_2_x.ipynb": (b"bob", OLD),
    })
    result = collect_zip(zip_path, tmp_path / "s", lesson=LESSON)

    assert (tmp_path / "s" / "alice" / LESSON / NB).read_bytes() == b"second try"
    assert result.superseded == [("alice", "alice_1_b.ipynb")]
    assert result.why["alice_1_b.ipynb"] == "an older submission by alice"
    assert "alice_1_b.ipynb" not in result.unmatched
    assert (tmp_path / "s" / "alice" / LESSON / "timestamp.txt").read_text().startswith("2026-11-21 09:00")
    assert "1 older duplicate(s) not used" in result.summary()


def test_equal_times_keep_the_later_name(tmp_path):
    """With equal ZIP times, is the later path in sort order kept (nbgrader's >= rule)?"""
    zip_path = make_zip(tmp_path / "d.zip", {"alice_1_a.ipynb": (b"a", OLD), "alice_1_b.ipynb": (b"b", OLD)})
    result = collect_zip(zip_path, tmp_path / "s", lesson=LESSON)
    assert (tmp_path / "s" / "alice" / LESSON / NB).read_bytes() == b"b"
    assert result.superseded == [("alice", "alice_1_a.ipynb")]


def test_existing_submissions_need_force_and_others_are_kept(class_zip, tmp_path):
    """Does a second collection stop before writing anything, and --force replace only the ZIP's students?"""
    out = tmp_path / "submitted"
    collect_zip(class_zip, out, lesson=LESSON)
    (out / "alice" / LESSON / NB).write_bytes(b"edited by hand")
    (out / "zoe" / LESSON).mkdir(parents=True)
    (out / "zoe" / LESSON / NB).write_bytes(b"zoe, from another download")

    with pytest.raises(CourseError, match="already collected.*alice, bob, carol, dave.*--force"):
        collect_zip(class_zip, out, lesson=LESSON)
    assert (out / "alice" / LESSON / NB).read_bytes() == b"edited by hand"

    collect_zip(class_zip, out, lesson=LESSON, force=True)
    assert (out / "alice" / LESSON / NB).read_bytes() == b"alice"
    assert (out / "zoe" / LESSON / NB).read_bytes() == b"zoe, from another download"
    assert not [p for p in out.rglob(".collect-*")]


def test_unsafe_names_are_refused(tmp_path):
    """Are a path escaping the ZIP and a student id that is no plain folder name listed, and nothing written outside?"""
    zip_path = make_zip(tmp_path / "d.zip", {
        "../escape_1_x.ipynb": b"e",
        "/abs_2_x.ipynb": b"a",
        "..._3_x.ipynb": b"dots",
        "ok_4_x.ipynb": b"ok",
    })
    out = tmp_path / "deep" / "submitted"
    result = collect_zip(zip_path, out, lesson=LESSON, pattern=r"(?:.*/)?(?P<student_id>[^_/]+)_\d+_")

    assert [s for s, _ in result.collected] == ["ok"]
    assert result.why["../escape_1_x.ipynb"] == "unsafe path in the ZIP (not extracted)"
    assert result.why["..._3_x.ipynb"] == "student id '...' is not a plain folder name"
    assert "/abs_2_x.ipynb" in result.unmatched
    assert sorted(p.name for p in (tmp_path / "deep").iterdir()) == ["submitted"]
    assert sorted(p.name for p in out.iterdir()) == ["ok"]


def test_moodle_folders_with_the_documented_pattern(tmp_path):
    """Does MOODLE_PATTERN take the participant number from Moodle's folder per student?"""
    zip_path = make_zip(tmp_path / "moodle.zip", {
        f"Jane Smith_4242_assignsubmission_file_/{NB}": b"jane",
        "Ada Lovelace_17_assignsubmission_file_/whatever.ipynb": b"ada",
        "Ada Lovelace_17_assignsubmission_onlinetext_/onlinetext.html": b"<p>hi</p>",
    })
    result = collect_zip(zip_path, tmp_path / "s", lesson=LESSON, pattern=MOODLE_PATTERN)
    assert tree(tmp_path / "s") == {f"17/{LESSON}/{NB}": b"ada", f"4242/{LESSON}/{NB}": b"jane"}
    assert result.unmatched == ["Ada Lovelace_17_assignsubmission_onlinetext_/onlinetext.html"]
    by_name = collect_zip(zip_path, tmp_path / "s2", lesson=LESSON, pattern="moodle")
    assert [s for s, _ in by_name.collected] == ["17", "4242"]


def test_default_pattern_reads_canvas_names():
    """Which student id does the default pattern read from typical names?"""
    import re

    def student(name):
        match = re.match(DEFAULT_PATTERN, name)
        return match and match["student_id"]

    assert student(f"alice_12345_{NB}") == "alice"
    assert student("smithjane_LATE_12345_67890_lesson1-1.ipynb") == "smithjane"
    assert student("a/b/bob_7_x.ipynb") == "bob"
    assert student("README.ipynb") is None
    assert student("._alice_1_x.ipynb") is None


def test_bad_input_is_one_clear_error(tmp_path):
    """Do a missing file, a non-ZIP, a pattern without student_id and an unknown lesson each raise CourseError?"""
    good = make_zip(tmp_path / "ok.zip", {"alice_1_x.ipynb": b"a"})
    not_zip = tmp_path / "grades.zip"
    not_zip.write_text("this is no zip")
    with pytest.raises(CourseError, match="no such file"):
        collect_zip(tmp_path / "nope.zip", tmp_path / "s", lesson=LESSON)
    with pytest.raises(CourseError, match="not a ZIP"):
        collect_zip(not_zip, tmp_path / "s", lesson=LESSON)
    with pytest.raises(CourseError, match="student_id"):
        collect_zip(good, tmp_path / "s", lesson=LESSON, pattern=r"(?P<name>\w+)_")
    with pytest.raises(CourseError, match="not a regular expression"):
        collect_zip(good, tmp_path / "s", lesson=LESSON, pattern=r"(?P<student_id>")
    with pytest.raises(CourseError, match="unknown lesson"):
        collect_zip(good, tmp_path / "s", lesson="99")
    assert not (tmp_path / "s").exists()


def test_an_empty_zip_collects_nothing(tmp_path):
    """Does a ZIP with no files give an empty result that says so, and no folders?"""
    zip_path = make_zip(tmp_path / "empty.zip", {})
    result = collect_zip(zip_path, tmp_path / "s", lesson=LESSON)
    assert (result.collected, result.unmatched, result.superseded) == ([], [], [])
    assert result.summary() == f"{LESSON}: collected 0 submission(s)"
    assert not (tmp_path / "s").exists() or list((tmp_path / "s").iterdir()) == []


def test_a_bad_timestamp_group_fails_cleanly(tmp_path):
    """Does an unparseable timestamp from the pattern end in CourseError (nbgrader's fail), writing nothing?"""
    zip_path = make_zip(tmp_path / "d.zip", {"alice_1_notadate_x.ipynb": b"a"})
    with pytest.raises(CourseError, match="nbgrader could not collect"):
        collect_zip(zip_path, tmp_path / "s", lesson=LESSON,
                    pattern=r"(?P<student_id>[a-z]+)_\d+_(?P<timestamp>[a-z]+)_")
    assert not (tmp_path / "s").exists()


def test_no_temporary_folder_is_left(class_zip, tmp_path, monkeypatch):
    """Is nbgrader's throw-away course directory removed afterwards?"""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    seen = []
    real_run = collect._run_nbgrader

    def spy(root, *args):
        seen.append(sorted(p.name for p in scratch.iterdir()))
        return real_run(root, *args)

    monkeypatch.setattr(collect, "_run_nbgrader", spy)
    collect_zip(class_zip, tmp_path / "submitted", lesson=LESSON)
    assert len(seen) == 1 and seen[0][0].startswith("course-collect-")  # it was made here...
    assert os.listdir(scratch) == []                                   # ...and removed


def test_a_zip_bomb_is_refused_before_unpacking(tmp_path, monkeypatch):
    """Is a ZIP that would unpack beyond the limit refused without writing anything?"""
    monkeypatch.setattr(collect, "MAX_UNZIPPED_BYTES", 1000)
    zip_path = make_zip(tmp_path / "bomb.zip", {"alice_1_x.ipynb": b"0" * 5000})
    with pytest.raises(CourseError, match="would unpack"):
        collect_zip(zip_path, tmp_path / "s", lesson=LESSON)
    assert not (tmp_path / "s").exists()


def _unix_entry(name: str, mode: int, when=NEW) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, when)
    info.create_system = 3  # made on Unix: its mode bits are in external_attr
    info.external_attr = mode << 16
    return info


def test_no_mode_bit_link_or_special_entry_survives_collection(tmp_path):
    """Does a setuid, executable, symlink or FIFO entry become at most a plain 0644 file?"""
    import stat

    zip_path = tmp_path / "modes.zip"
    with zipfile.ZipFile(zip_path, "w") as archive:
        archive.writestr(_unix_entry(f"alice_1_{LESSON}.ipynb", 0o104755), b"alice")       # setuid, executable
        archive.writestr(_unix_entry(f"bob_2_{LESSON}.ipynb", 0o120777), b"/etc/shadow")  # a symlink entry
        archive.writestr(_unix_entry(f"carol_3_{LESSON}.ipynb", 0o010644), b"fifo")       # a FIFO entry
        archive.writestr(_unix_entry("dave_4_run.ipynb", 0o102755), b"dave")              # setgid
    out = tmp_path / "submitted"
    result = collect_zip(zip_path, out, lesson=LESSON)
    assert sorted(s for s, _ in result.collected) == ["alice", "dave"]
    assert "symbolic link" in result.why[f"bob_2_{LESSON}.ipynb"]
    assert "not a regular file" in result.why[f"carol_3_{LESSON}.ipynb"]
    for path in out.rglob("*"):
        mode = path.lstat().st_mode
        assert not stat.S_ISLNK(mode)
        assert not mode & (stat.S_ISUID | stat.S_ISGID | 0o111) or path.is_dir(), (path, oct(mode))
        assert stat.S_IMODE(mode) in (0o644, 0o755), (path, oct(mode))


def test_a_compression_bomb_is_skipped_by_name_and_the_rest_collected(tmp_path):
    """Is an entry that unpacks to hundreds of times its size skipped and listed under its own name
    and the instructor's ZIP (not nbgrader's copy), the rest of the class collected, and does
    max_ratio let the instructor take it after all?"""
    zip_path = tmp_path / "canvas-01.zip"
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"alice_1_{LESSON}.ipynb", b"0" * (8 << 20))
        archive.writestr(f"bob_2_{LESSON}.ipynb", b"bob")
    assert zip_path.stat().st_size < 64 << 10
    result = collect_zip(zip_path, tmp_path / "s", lesson=LESSON)
    assert [s for s, _ in result.collected] == ["bob"]
    why = result.why[f"alice_1_{LESSON}.ipynb"]
    assert "times its size" in why and "--max-ratio" in why, why
    assert "download.zip" not in result.summary() and f"alice_1_{LESSON}.ipynb" in result.summary()
    assert not (tmp_path / "s" / "alice").exists()
    again = collect_zip(zip_path, tmp_path / "s2", lesson=LESSON, max_ratio=1e6)
    assert sorted(s for s, _ in again.collected) == ["alice", "bob"]
    assert (tmp_path / "s2" / "alice" / LESSON / NB).stat().st_size == 8 << 20


def test_a_refused_zip_is_named_as_the_instructor_gave_it(tmp_path, monkeypatch):
    """Does a ZIP refused whole (too many entries) name the instructor's file, not nbgrader's copy?"""
    import functools

    from autograder import unzip

    monkeypatch.setattr(unzip, "Bounds", functools.partial(unzip.Bounds, entries=2))
    zip_path = make_zip(tmp_path / "canvas-07.zip", {f"s{n}_1_{LESSON}.ipynb": b"x" for n in range(3)})
    with pytest.raises(CourseError, match="canvas-07.zip: the ZIP has 3 entries"):
        collect_zip(zip_path, tmp_path / "s", lesson=LESSON)


def test_a_canvas_late_mark_is_kept_beside_the_notebook(class_zip, tmp_path):
    """Does Canvas's LATE in a file name reach submitted/ as a marker course grade reads?"""
    from autograder.collect import LATE_MARKER

    out = tmp_path / "submitted"
    result = collect_zip(class_zip, out, lesson="01")
    assert result.late == ["dave"] and "1 marked late" in result.summary()
    assert (out / "dave" / LESSON / LATE_MARKER).is_file()
    assert not (out / "alice" / LESSON / LATE_MARKER).exists()


def test_two_entries_with_one_name_keep_the_newer_and_list_the_other(tmp_path):
    """Of two entries with the same path, is the newer one used and the older one listed?"""
    zip_path = tmp_path / "dupes.zip"
    name = f"alice_1_{LESSON}.ipynb"
    with zipfile.ZipFile(zip_path, "w") as archive:
        archive.writestr(zipfile.ZipInfo(name, NEW), b"newer")
        archive.writestr(zipfile.ZipInfo(name, OLD), b"older")  # later in the archive, older in time
    out = tmp_path / "submitted"
    result = collect_zip(zip_path, out, lesson=LESSON)
    assert (out / "alice" / LESSON / NB).read_bytes() == b"newer"
    assert any("older entry with the same name" in why for why in result.why.values()), result.why


def test_names_from_the_zip_reach_the_terminal_escaped(tmp_path):
    """Does an ANSI escape in a file name inside the ZIP print as text, not as a terminal command?"""
    zip_path = make_zip(tmp_path / "ansi.zip", {"\x1b[2J\x1b[31mevil.txt": b"x",
                                               f"alice_1_{LESSON}.ipynb": b"alice"})
    summary = collect_zip(zip_path, tmp_path / "submitted", lesson=LESSON).summary()
    assert "\x1b" not in summary and "\\x1b[2J" in summary
