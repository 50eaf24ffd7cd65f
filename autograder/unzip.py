"""Extract a ZIP that anyone may have made: files as data, bounded, nothing half-written.

A learning platform's download is the instructor's, but what is inside was
uploaded by students, and an archive's entries carry more than names and
bytes: Unix mode bits (a setuid entry becomes a setuid file when an
extractor ``chmod``s it, as nbgrader's does), symbolic links, ``..`` and
absolute paths, and sizes that lie (a bomb: 0.9 MB that unpacks to 900 MB).
:func:`safe_extract` writes regular files only, mode 0644 in folders of
0755, refuses the whole archive when it is over its bounds — total size or
entry count — and leaves nothing behind when it refuses.

An entry is judged on its own: one that unpacks to more than ``ratio`` times
its compressed size (a bomb), or to more than it declared, is skipped and
listed with why — the rest of the class is still collected, and the
instructor who trusts the entry raises the ratio (``course collect
--max-ratio``). A symlink or special entry is skipped with a reason, never
followed or recreated.
"""

from __future__ import annotations

import os
import shutil
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

__all__ = ["Bounds", "Refused", "Extracted", "safe_extract"]

FILE_MODE = 0o644
DIR_MODE = 0o755
CHUNK = 1 << 16


@dataclass(frozen=True)
class Bounds:
    """What one archive may unpack to."""

    total_bytes: int = 2 * 1024**3
    entries: int = 20_000
    ratio: float = 200.0          # uncompressed / compressed, per entry (a larger one is skipped)
    min_ratio_bytes: int = 1 << 20  # entries smaller than this are never a bomb by ratio


class Refused(Exception):
    """The archive is refused whole; the message says why."""


@dataclass
class Extracted:
    """Regular files written (path inside the ZIP -> file on disk) and entries skipped with why."""

    files: dict[str, Path] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)


def _kind(info: zipfile.ZipInfo) -> str | None:
    """'link' or 'special' for an entry that is not a plain file or folder, else None."""
    mode = info.external_attr >> 16
    if not mode or info.create_system != 3:  # not made on Unix: no mode bits to trust or fear
        return None
    kind = stat.S_IFMT(mode)
    if kind == stat.S_IFLNK:
        return "link"
    if kind in (0, stat.S_IFDIR, stat.S_IFREG):  # many zippers store permission bits only
        return None
    return "special"


def _when(info: zipfile.ZipInfo) -> str:
    return "%04d-%02d-%02d %02d:%02d:%02d" % info.date_time


def _safe_parts(name: str) -> tuple[str, ...] | None:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or not path.parts or any(p in ("..", "") for p in path.parts) or ":" in path.parts[0]:
        return None
    return path.parts


def safe_extract(zip_path: Path, dest: Path, bounds: Bounds = Bounds()) -> Extracted:
    """Extract ``zip_path`` into the new folder ``dest`` (removed again if the archive is refused)."""
    dest = Path(dest)
    dest.mkdir(mode=DIR_MODE)
    try:
        return _extract(Path(zip_path), dest, bounds)
    except Refused:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, RuntimeError, OSError) as error:
        shutil.rmtree(dest, ignore_errors=True)
        raise Refused(f"the ZIP cannot be read: {error}")


def _extract(zip_path: Path, dest: Path, bounds: Bounds) -> Extracted:
    done = Extracted()
    with zipfile.ZipFile(zip_path) as archive:
        infos = archive.infolist()
        if len(infos) > bounds.entries:
            raise Refused(f"the ZIP has {len(infos)} entries, over the limit of {bounds.entries}")
        declared = sum(i.file_size for i in infos)
        if declared > bounds.total_bytes:
            raise Refused(f"the ZIP would unpack to {declared / 2**20:.0f} MB, over the limit of "
                          f"{bounds.total_bytes / 2**20:.0f} MB")
        newest: dict[str, zipfile.ZipInfo] = {}
        for info in infos:  # of two entries with one name, the newer wins (ties: the later one)
            if info.filename not in newest or info.date_time >= newest[info.filename].date_time:
                newest[info.filename] = info
        written = 0
        for info in infos:
            if newest[info.filename] is not info:
                done.skipped[f"{info.filename} ({_when(info)})"] = (
                    f"an older entry with the same name; the one of {_when(newest[info.filename])} was used")
                continue
            name = info.filename
            kind = _kind(info)
            parts = _safe_parts(name)
            if parts is None:
                done.skipped[name] = "unsafe path in the ZIP (not extracted)"
                continue
            if kind == "link":
                done.skipped[name] = "a symbolic link: not extracted"
                continue
            if kind == "special":
                done.skipped[name] = "not a regular file: not extracted"
                continue
            if info.is_dir():
                continue
            ratio = info.file_size / max(info.compress_size, 1)
            if info.file_size > bounds.min_ratio_bytes and ratio > bounds.ratio:
                done.skipped[name] = (f"unpacks to {ratio:.0f} times its size ({info.file_size / 2**20:.0f} MB; "
                                      f"a ZIP bomb?): not extracted (the limit is {bounds.ratio:g}; "
                                      f"raise it with --max-ratio)")
                continue
            target = dest.joinpath(*parts)
            folder = target.parent
            folder.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
            if target.exists():  # a file and a folder of one name: the first one stays
                done.skipped[name] = "clashes with another entry of the ZIP: not extracted"
                continue
            size = 0
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, FILE_MODE)
            with os.fdopen(fd, "wb") as out, archive.open(info) as src:
                while chunk := src.read(CHUNK):
                    size += len(chunk)
                    written += len(chunk)
                    if size > info.file_size or written > bounds.total_bytes:
                        break
                    out.write(chunk)
            if size > info.file_size or written > bounds.total_bytes:  # its header lied
                target.unlink()
                written -= size
                done.skipped[name] = "unpacks to more than the ZIP declares for it: not extracted"
                continue
            os.chmod(target, FILE_MODE)
            date = info.date_time
            try:
                import time

                stamp = time.mktime(date + (0, 0, -1))
                os.utime(target, (stamp, stamp))
            except (OverflowError, ValueError):
                pass
            done.files[name] = target
    return done
