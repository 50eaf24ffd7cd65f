"""The leak test by content: what a student's account can read, searched for lines only answers hold.

What it models: a student who reads every file their Unix account can open
and every process's command line and environment they can see, looking for
a hidden test, a solution, a walkthrough or a hint the instructor held back.
Paths do not matter here, contents do: a copy of a source notebook under any
name, a wheel that packed one, a log that printed one are all found.

* :func:`secret_lines` reads the lessons' source notebooks (as root) and
  keeps each line of a hidden-test block, a solution block, a walkthrough and
  a held-back hint that appears nowhere in the released material (the
  student notebooks, the hints files, the course's own packages): a line a
  student may legitimately read is not a secret.
* :data:`WALKER` runs as the student (``runuser``, the system python3, ``-I``)
  and gets those lines on stdin (a demo account: the walker is the test's own
  program). It reads every file it can
  open under the given roots (inside ZIP and gzip files too; HTML with its
  tags removed), normalises each line the same way and reports the hashes it
  finds. Files unchanged since before the class started are read only under
  the class's own paths and the shared scratch folders (/tmp, /var/tmp,
  /dev/shm, homes): elsewhere (/usr, /opt, ...) nothing of the class can be
  in a file it never touched, so those are only listed. A third-party
  package's file whose sha256 matches its wheel's RECORD (root-owned) is
  *verified* instead of split into lines; the course's own wheel never is.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import nbformat

__all__ = ["MIN_LINE", "normalise", "secret_lines", "public_lines", "walk_as", "WALKER"]

MIN_LINE = 28   # shorter lines (``return self._count``) also occur in third-party code, by coincidence


# The same normalisation on both sides (also inside WALKER, which cannot import this module).
_CONTROL_BYTES = bytes([*range(0, 9), 11, 12, 13, *range(14, 32)])
_CONTROL = bytes.maketrans(_CONTROL_BYTES, b"\n" * len(_CONTROL_BYTES))
_STRIP = b' \t",\\'


def normalise(data: bytes) -> list[bytes]:
    """The candidate lines of some bytes: JSON string escapes undone, control bytes as line breaks."""
    data = data.replace(b'\\"', b'"').replace(b"\\\\", b"\\").replace(b"\\n", b"\n").replace(b"\\t", b"\t")
    return [p for p in (piece.strip(_STRIP) for piece in data.translate(_CONTROL).split(b"\n"))
            if len(p) >= MIN_LINE]


def _blocks(source: str, begin: str, end: str) -> list[str]:
    inside, found = False, []
    for line in source.splitlines():
        if begin in line:
            inside = True
        elif end in line:
            inside = False
        elif inside:
            found.append(line)
    return found


def secret_lines(notebooks: Path, lessons: list[str], hints_off: set[str], public: set[bytes]
                 ) -> dict[bytes, tuple[str, str]]:
    """{normalised line: (lesson, kind)} for hidden tests, solutions, walkthroughs, held-back hints."""
    secrets: dict[bytes, tuple[str, str]] = {}
    for lesson in lessons:
        for path in sorted((notebooks / lesson).glob("*.ipynb")):
            for cell in nbformat.read(path, as_version=4).cells:
                tags = set(cell.metadata.get("tags", []))
                texts = [("hidden", _blocks(cell.source, "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")),
                         ("solution", _blocks(cell.source, "BEGIN SOLUTION", "END SOLUTION"))]
                if "walkthrough" in tags:
                    texts.append(("walkthrough", cell.source.splitlines()))
                if "hint" in tags and lesson in hints_off:
                    texts.append(("hint", cell.source.splitlines()))
                for kind, lines in texts:
                    for line in lines:
                        for piece in normalise(line.encode()):
                            if piece not in public:
                                secrets.setdefault(piece, (lesson, kind))
    return secrets


def public_lines(paths: list[Path]) -> set[bytes]:
    """Every normalised line of the released material (files or folders of files)."""
    found: set[bytes] = set()
    for root in paths:
        for path in ([root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())):
            if path.suffix == ".ipynb":
                for cell in nbformat.read(path, as_version=4).cells:
                    found.update(normalise(cell.source.encode()))
            else:
                found.update(normalise(path.read_bytes()))
    return found


def walk_as(user: str, *, secrets: dict[bytes, tuple[str, str]], tokens: list[str], full: list[Path],
            new_only: list[Path], since: float, prune: list[Path] = (), known: list | None = None,
            also: list[str] = (), timeout: float = 900) -> dict:
    """Run :data:`WALKER` as ``user``; its report, with each finding's (lesson, kind) filled in.

    ``known``: files an earlier walk read clean (dev, inode, size, ctime): only opened again.
    ``also``: files to read besides the roots (an earlier walk's changed files, instead of
    listing ``new_only`` again).
    """
    where = {line.hex(): place for line, place in secrets.items()}
    where.update({token.encode().hex(): ("-", "token") for token in tokens})
    spec = {"secrets": sorted(line.hex() for line in secrets), "tokens": [t.encode().hex() for t in tokens],
            "full": [str(p) for p in full], "new_only": [str(p) for p in new_only],
            "since": since, "prune": [str(p) for p in prune], "known": known or [], "also": list(also)}
    done = subprocess.run(["runuser", "-u", user, "--", "/usr/bin/python3", "-I", "-c", WALKER],
                          input=json.dumps(spec), capture_output=True, text=True, timeout=timeout, cwd="/")
    if done.returncode != 0:
        raise AssertionError(f"the walker failed as {user} ({done.returncode}): {done.stderr[-2000:]}")
    report = json.loads(done.stdout)
    for finding in report["findings"]:
        finding["what"] = [where.get(h, ("?", "?")) for h in finding["matched"]]
    return report


WALKER = r'''
import base64, glob, hashlib, html, io, json, os, re, stat, sys, zipfile, zlib
spec = json.load(sys.stdin)
LINES = {bytes.fromhex(h) for h in spec["secrets"]}
TOKENS = [bytes.fromhex(h) for h in spec["tokens"]]  # passwords and tokens: searched inside lines too
SINCE_NS = int(spec["since"] * 1e9); PRUNE = set(spec["prune"]); KNOWN = {tuple(k) for k in spec["known"]}
CONTROL_BYTES = bytes([*range(0, 9), 11, 12, 13, *range(14, 32)])
CONTROL = bytes.maketrans(CONTROL_BYTES, b"\n" * len(CONTROL_BYTES))
STRIP = b' \t",\\'
CHUNK = 32 << 20
MAX_UNPACKED = 256 << 20
report = {"files_read": 0, "bytes_read": 0, "verified": 0, "listed_only": 0, "refused": 0, "proc_read": 0,
          "findings": [], "clean": [], "changed": []}

def scan(data, found):
    raw = data
    data = data.replace(b'\\"', b'"').replace(b"\\\\", b"\\").replace(b"\\n", b"\n").replace(b"\\t", b"\t")
    found.update(LINES.intersection(piece.strip(STRIP) for piece in data.translate(CONTROL).split(b"\n")))
    found.update(t for t in TOKENS if t in raw)

def unpack(head, data, found):
    if head.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                budget = MAX_UNPACKED
                for info in z.infolist():
                    if info.file_size > budget:
                        break
                    budget -= info.file_size
                    member = z.read(info)
                    scan(member, found)
                    unpack(member[:4096], member, found)
        except Exception:
            pass
    elif head.startswith(b"\x1f\x8b"):
        try:
            scan(zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data, MAX_UNPACKED), found)
        except Exception:
            pass
    if b"<html" in head.lower() or b"<!doctype html" in head.lower():
        text = html.unescape(re.sub(r"<[^>]*>", "", data.decode("utf-8", "replace")))
        scan(text.encode(), found)

def read_file(path, found):
    with open(path, "rb", buffering=0) as f:
        first = f.read(CHUNK)
        total, head, tail = len(first), first[:4096], b""
        whole = first if len(first) < CHUNK else None
        data = first
        while data:
            cut = data.rfind(b"\n") + 1 or len(data)
            scan(tail + data[:cut], found)
            tail = data[cut:]
            data = f.read(CHUNK)
            total += len(data)
        scan(tail, found)
    if whole is not None:
        unpack(head, whole, found)
    return total

def record(path, found, uid):
    if found:
        report["findings"].append({"path": path, "uid": uid, "matched": sorted(s.hex() for s in found)[:50]})

# Files of third-party packages byte for byte as their wheel shipped them (the sha256 in the
# package's RECORD, which only root can change) hold nothing of this course: verified, not
# split into lines. The course's own wheel is never taken on trust.
PUBLISHED = {}
for root in spec["full"]:
    for listing in glob.glob(os.path.join(root, "**", "site-packages", "*.dist-info", "RECORD"), recursive=True):
        if os.path.basename(os.path.dirname(listing)).startswith("threads_sockets_course"):
            continue
        site = os.path.dirname(os.path.dirname(listing))
        try:
            owner = os.stat(listing)
            if owner.st_uid != 0 or owner.st_mode & 0o022:  # a RECORD another account could have written
                continue
            with open(listing, encoding="utf-8") as f:
                for row in f:
                    parts = row.rstrip("\n").rsplit(",", 2)
                    if len(parts) == 3 and parts[1].startswith("sha256=") and parts[2].isdigit():
                        PUBLISHED[os.path.normpath(os.path.join(site, parts[0]))] = (parts[1][7:], int(parts[2]))
        except OSError:
            pass

def published(path, st):
    entry = PUBLISHED.get(path)
    if entry is None or entry[1] != st.st_size:
        return False
    digest = hashlib.sha256()
    with open(path, "rb", buffering=0) as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    report["verified"] += 1
    report["bytes_read"] += st.st_size
    return base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode() == entry[0]

seen = set()
def visit(path, st, new_only):
    if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) in seen:
        return
    seen.add((st.st_dev, st.st_ino))
    key = (st.st_dev, st.st_ino, st.st_size, st.st_ctime_ns)
    if new_only and st.st_ctime_ns < SINCE_NS:
        report["listed_only"] += 1
        return
    if new_only:
        report["changed"].append(path)
    try:
        if key in KNOWN:  # read clean by an earlier walk and unchanged since: can this account open it?
            os.close(os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK))
            report["files_read"] += 1
            return
        if published(path, st):
            report["files_read"] += 1
            report["clean"].append(list(key))
            return
        found = set()
        report["bytes_read"] += read_file(path, found)
    except OSError:
        report["refused"] += 1
        return
    report["files_read"] += 1
    record(path, found, st.st_uid)
    if not found:
        report["clean"].append(list(key))

def walk(root, new_only):
    try:
        root_dev = os.lstat(root).st_dev
    except OSError:
        return
    for here, dirs, files in os.walk(root, onerror=lambda e: None):
        kept = []
        for d in dirs:
            full = os.path.join(here, d)
            try:
                st = os.lstat(full)
            except OSError:
                continue
            if full in PRUNE or st.st_dev != root_dev or stat.S_ISLNK(st.st_mode):
                continue
            kept.append(d)
        dirs[:] = kept
        for name in files:
            path = os.path.join(here, name)
            try:
                st = os.lstat(path)
            except OSError:
                continue
            visit(path, st, new_only)

for root in spec["full"]:
    walk(root, False)
for path in spec["also"]:
    try:
        visit(path, os.lstat(path), False)
    except OSError:
        pass
for root in spec["new_only"]:
    walk(root, True)
for pid in os.listdir("/proc"):
    if pid.isdigit():
        for part in ("cmdline", "environ"):
            path = f"/proc/{pid}/{part}"
            try:
                with open(path, "rb") as f:
                    data = f.read()
                uid = os.stat(f"/proc/{pid}").st_uid
            except OSError:
                continue
            found = set()
            scan(data.replace(b"\0", b"\n"), found)
            report["proc_read"] += 1
            record(path, found, uid)
json.dump(report, sys.stdout)
'''
