"""The reviewed list of equivalent mutants (tests/mutation/equivalent.txt).

One line a mutant: ``ID FINGERPRINT reason``. The fingerprint is the mutant's digest when it
was reviewed: if the reference (or the engine) changes the mutant, the entry is *stale* and
must be reviewed again. ``#`` starts a comment.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["Equivalent", "EQUIVALENT_FILE", "equivalents"]

EQUIVALENT_FILE = Path(__file__).with_name("equivalent.txt")


@dataclass(frozen=True)
class Equivalent:
    id: str
    fingerprint: str
    reason: str


def equivalents(path: Path = EQUIVALENT_FILE) -> dict[str, Equivalent]:
    found = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(None, 2)
        if len(parts) < 3:
            raise ValueError(f"{path.name}:{number}: expected `ID FINGERPRINT reason`, got {line!r}")
        found[parts[0]] = Equivalent(*parts)
    return found
