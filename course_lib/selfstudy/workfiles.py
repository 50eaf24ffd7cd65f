"""Files in a learner's work folder, written so that a planted link cannot turn them against the learner.

A work folder may be shared or copied (a classmate's folder, a group
project), and whoever could write in it could leave symbolic links where
the course writes: ``.course-progress.json.lock`` pointing at a file the
learner owns, a lesson folder pointing outside. So every folder on the way
is opened one component at a time with ``O_NOFOLLOW`` relative to the one
above (no check-then-use gap), a folder path with a link anywhere in it is
refused with the link named, and every file is created with
``O_CREAT | O_EXCL | O_NOFOLLOW`` — new files only — then renamed into
place (a rename replaces a link, it never writes through it).

    Folder(path, create=False)    the folder, opened link-free; UnsafePath if a component is a link
    folder.read(name)             a file's text, or None if missing (a link is refused)
    folder.write_new(name, text)  create a file that does not exist yet (FileExistsError otherwise)
    folder.replace(name, text)    write a new file aside, then rename it over ``name``
    folder.lock(name)             an exclusive advisory lock on a regular file, as a context manager
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import secrets
import stat
from pathlib import Path

__all__ = ["UnsafePath", "Folder", "link_in"]

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_NEW_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class UnsafePath(ValueError):
    """A folder or file the course would write through is a symbolic link (or not what it should be)."""


def link_in(path: Path | str) -> Path | None:
    """The first component of ``path`` (made absolute, not resolved) that is a symbolic link, or None."""
    here = Path(os.path.abspath(path))
    for part in [*reversed(here.parents), here]:
        try:
            if stat.S_ISLNK(os.lstat(part).st_mode):
                return part
        except FileNotFoundError:
            return None
    return None


def _refuse(path: Path, what: str = "a folder on the way") -> UnsafePath:
    target = ""
    with contextlib.suppress(OSError):
        target = f" (to {os.readlink(path)})"
    return UnsafePath(f"{path} is a symbolic link{target}: the course does not write through links, which "
                      f"could send its files outside your work folder ({what}). Use the real folder "
                      f"{os.path.realpath(path)} if it is yours, or another one")


class Folder:
    """An open folder (a descriptor opened without following links); use with ``with`` or close()."""

    def __init__(self, path: Path | str, *, create: bool = False):
        self.path = Path(os.path.abspath(path))
        self.fd = self._open(create)

    def _open(self, create: bool) -> int:
        fd = os.open("/", _DIR_FLAGS)
        here = Path("/")
        try:
            for part in self.path.parts[1:]:
                here = here / part
                try:
                    next_fd = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        raise
                    with contextlib.suppress(FileExistsError):  # made meanwhile: opened (and checked) below
                        os.mkdir(part, 0o755, dir_fd=fd)
                    next_fd = self._open_one(part, fd, here)
                except OSError as exc:
                    raise self._why(exc, part, fd, here) from None
                os.close(fd)
                fd = next_fd
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _open_one(self, part: str, fd: int, here: Path) -> int:
        try:
            return os.open(part, _DIR_FLAGS, dir_fd=fd)
        except OSError as exc:
            raise self._why(exc, part, fd, here) from None

    @staticmethod
    def _why(exc: OSError, part: str, fd: int, here: Path) -> OSError:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
            with contextlib.suppress(OSError):
                if stat.S_ISLNK(os.stat(part, dir_fd=fd, follow_symlinks=False).st_mode):
                    return _refuse(here)
            return UnsafePath(f"{here} is not a folder")
        return exc

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> "Folder":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- files -------------------------------------------------------------------------------
    def _file_error(self, exc: OSError, name: str) -> OSError:
        if exc.errno == errno.ELOOP:
            return _refuse(self.path / name, "a file the course writes")
        return exc

    def read(self, name: str) -> str | None:
        """The text of ``name``, or None if there is none; UnsafePath if it is a link or not a file."""
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=self.fd)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise self._file_error(exc, name) from None
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise UnsafePath(f"{self.path / name} is not a regular file")
            return f.read().decode("utf-8")

    def write_new(self, name: str, text: str, mode: int = 0o644) -> Path:
        """Create ``name`` with ``text``; FileExistsError if anything (a file, a link) has that name."""
        try:
            fd = os.open(name, _NEW_FLAGS, mode, dir_fd=self.fd)
        except FileExistsError:
            raise
        except OSError as exc:
            raise self._file_error(exc, name) from None
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(name, dir_fd=self.fd)
            raise
        return self.path / name

    def replace(self, name: str, text: str, mode: int = 0o644) -> Path:
        """Write ``text`` to a new file beside ``name``, then rename it over ``name`` (atomic)."""
        aside = f".{name}.{secrets.token_hex(4)}.tmp"
        self.write_new(aside, text, mode)
        try:
            os.replace(aside, name, src_dir_fd=self.fd, dst_dir_fd=self.fd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(aside, dir_fd=self.fd)
            raise
        return self.path / name

    def rename(self, name: str, new_name: str) -> None:
        """Rename within the folder (a link named ``name`` is renamed, never followed)."""
        os.replace(name, new_name, src_dir_fd=self.fd, dst_dir_fd=self.fd)

    @contextlib.contextmanager
    def lock(self, name: str):
        """Hold an exclusive ``flock`` on ``name`` (created if missing; a link or non-file is refused)."""
        try:
            fd = os.open(name, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK,
                         0o600, dir_fd=self.fd)
        except OSError as exc:
            raise self._file_error(exc, name) from None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise UnsafePath(f"{self.path / name} is not a regular file")
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
