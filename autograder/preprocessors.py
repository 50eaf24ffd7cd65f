"""Feedback preprocessors: what a student gets back from a graded notebook.

Feedback carries verdicts, not execution. A student's feedback shows the
lesson's cells with their own solution cells, and for each graded test its
points (nbgrader's feedback template) and one line naming the test: passed,
or ``Name: message``, the message the course's test helpers wrote. A failure
of a *hidden* check (:mod:`autograder.referee` decides, by the line it came
from) shows only its public summary — what went wrong, never the hidden
input or the expected value — and a failure that came after hidden checks
had run shows only where it failed (its message could carry what they gave
the student's code; :mod:`autograder.execute` marks it), unless the course
asked for full feedback (``course grade --feedback full``). Nothing else the judge kernel
printed reaches the student — not their own prints (those stay in their
notebook), not a traceback (it would quote hidden test lines), not a plot.
Hidden test code is cleared from the cells (nbgrader's ``ClearHiddenTests``),
and a message that quotes a hidden line, plainly or encoded
(:mod:`autograder.leaks`), is withheld.
"""

from __future__ import annotations

from nbformat.v4 import new_output
from nbgrader.preprocessors import ClearHiddenTests
from traitlets import Bool

from .leaks import WITHHELD, hidden_lines, quotes_hidden
from .referee import after_hidden_summary, shown_ename

__all__ = ["VerdictFeedback"]


class VerdictFeedback(ClearHiddenTests):
    """Clear hidden test regions and every output but each test's one-line verdict."""

    full = Bool(False, help="Show hidden checks' own messages (they may quote hidden inputs and "
                            "expected values) instead of their public summaries.").tag(config=True)

    def preprocess(self, nb, resources):
        self._hidden = hidden_lines(c for c in nb.cells if c.cell_type == "code")
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell, resources, cell_index):
        if cell.cell_type != "code":
            return cell, resources
        outputs = cell.get("outputs", [])
        cell.outputs = []
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade"):
            self._remove_hidden_test_region(cell)
            verdict = cell.metadata.get("course", {}).get("verdict", {})
            errors = [o for o in outputs if o.get("output_type") == "error"]
            name = str(meta.get("grade_id", "this test"))
            if errors:
                ename = str(errors[-1].get("ename", "Error"))
                evalue = str(errors[-1].get("evalue", ""))
                if verdict.get("hidden") and not self.full:
                    evalue = f"{name}: {verdict.get('public') or 'a hidden check of this test failed'}"
                    ename = "HiddenCheckFailed"
                elif verdict.get("after_hidden") and not self.full:
                    summary = verdict.get("public") if verdict.get("status") != "passed" else ""
                    evalue = f"{name}: {summary or after_hidden_summary(None, None)}"
                    ename = shown_ename(ename)
                evalue = evalue[:1000]
                if quotes_hidden(f"{ename}: {evalue}", self._hidden):
                    evalue = WITHHELD
                cell.outputs = [new_output("error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])]
            elif verdict.get("status") == "passed":
                cell.outputs = [new_output("stream", name="stdout", text=f"✔ {name}: passed\n")]
        return cell, resources
