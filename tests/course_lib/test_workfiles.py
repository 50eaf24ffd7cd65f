"""Can a link planted in a work folder make the course write, read or lock anything outside it?"""

import os
import threading

import pytest

from course_lib.selfstudy.workfiles import Folder, UnsafePath, link_in


def test_a_folder_with_a_link_anywhere_in_its_path_is_refused(tmp_path):
    (tmp_path / "real" / "deep").mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "real")
    assert link_in(tmp_path / "link" / "deep") == tmp_path / "link"
    assert link_in(tmp_path / "real" / "deep") is None
    for create in (False, True):
        with pytest.raises(UnsafePath, match="symbolic link"):
            Folder(tmp_path / "link" / "deep", create=create)
    with pytest.raises(UnsafePath, match="symbolic link"):
        Folder(tmp_path / "link" / "new", create=True)
    assert not (tmp_path / "real" / "new").exists(), "nothing made through the link"


def test_missing_folders_are_made_one_by_one(tmp_path):
    with Folder(tmp_path / "a" / "b", create=True) as folder:
        assert folder.write_new("f.txt", "hi") == tmp_path / "a" / "b" / "f.txt"
    assert (tmp_path / "a" / "b" / "f.txt").read_text() == "hi"
    with pytest.raises(FileNotFoundError):
        Folder(tmp_path / "missing")


def test_no_write_goes_through_a_planted_file_link(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("mine")
    work = tmp_path / "work"
    work.mkdir()
    for name in ("new.txt", "page.html", "lock"):
        (work / name).symlink_to(victim)
    with Folder(work) as folder:
        with pytest.raises(FileExistsError):
            folder.write_new("new.txt", "theirs")
        with pytest.raises(UnsafePath, match="symbolic link"):
            folder.read("page.html")
        with pytest.raises(UnsafePath, match="symbolic link"):
            with folder.lock("lock"):
                pass
        folder.replace("page.html", "the course's page")   # the link is replaced, not written through
    assert victim.read_text() == "mine"
    assert not (work / "page.html").is_symlink() and (work / "page.html").read_text() == "the course's page"


def test_a_planted_fifo_is_refused_without_blocking(tmp_path):
    """A FIFO where the lock or the data file goes: refused at once, never a hang."""
    os.mkfifo(tmp_path / "lock")
    os.mkfifo(tmp_path / "data")
    outcome = []

    def attempt():
        with Folder(tmp_path) as folder:
            for action in (lambda: folder.lock("lock").__enter__(), lambda: folder.read("data")):
                try:
                    action()
                except UnsafePath as exc:
                    outcome.append(str(exc))

    thread = threading.Thread(target=attempt, daemon=True)
    thread.start()
    thread.join(5)
    assert not thread.is_alive() and len(outcome) == 2 and all("not a regular file" in o for o in outcome)


def test_replace_is_atomic_and_leaves_no_temporary_file(tmp_path):
    with Folder(tmp_path) as folder:
        folder.replace("data.json", "1")
        folder.replace("data.json", "2")
    assert [p.name for p in tmp_path.iterdir()] == ["data.json"] and (tmp_path / "data.json").read_text() == "2"
