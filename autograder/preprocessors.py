"""Feedback preprocessors: what a student may see of a graded notebook.

nbgrader's ``ClearHiddenTests`` removes hidden test code from the cells, but
the code still reaches the student other ways: the traceback of a failed
hidden test prints its lines, and student code runs in the same kernel as
the tests, so it can print the source of every cell that runs after it
(an IPython ``pre_run_cell`` hook, ``inspect.stack()``) — into a test
cell's output or a later cell's. So here:

* every error output of a graded test cell is cut down to ``Name: message``
  (the messages are written for students, ``course_lib.grading``);
* every output anywhere that quotes a line of hidden test code is replaced
  by a note saying it was withheld.

What it cannot catch: hidden code that student code encodes before printing
it (base64, rot13). The README's threat model says what to do about that.
"""

from __future__ import annotations

from nbformat.v4 import new_output
from nbgrader.preprocessors import ClearHiddenTests

WITHHELD = "[output withheld from feedback: it quoted hidden test code]"
MIN_LINE = 8  # shorter lines ("pass", "else:") are too common to count as a quote


class HideHiddenTests(ClearHiddenTests):
    """Clear hidden test regions, reduce test tracebacks, and withhold quoting outputs."""

    def preprocess(self, nb, resources):
        self._hidden_lines = _hidden_lines(nb, self.begin_test_delimeter, self.end_test_delimeter)
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell, resources, cell_index):
        if cell.cell_type != "code":
            return cell, resources
        if cell.metadata.get("nbgrader", {}).get("grade"):
            self._remove_hidden_test_region(cell)
            for output in cell.get("outputs", []):
                if output.get("output_type") == "error":
                    output["traceback"] = [f"{output.get('ename', 'Error')}: {output.get('evalue', '')}"]
        cell.outputs = [self._withhold(o) for o in cell.get("outputs", [])]
        return cell, resources

    def _withhold(self, output):
        text = _output_text(output)
        if any(line in text for line in self._hidden_lines):
            if output.get("output_type") == "error":
                return new_output("error", ename=output.get("ename", "Error"), evalue=WITHHELD,
                                  traceback=[f"{output.get('ename', 'Error')}: {WITHHELD}"])
            return new_output("stream", name="stdout", text=WITHHELD + "\n")
        return output


def _hidden_lines(nb, begin: str, end: str) -> set[str]:
    lines: set[str] = set()
    for cell in nb.cells:
        inside = False
        for line in cell.source.splitlines():
            if begin in line:
                inside = True
            elif end in line:
                inside = False
            elif inside and len(line.strip()) >= MIN_LINE:
                lines.add(line.strip())
    return lines


def _output_text(output) -> str:
    parts = [str(output.get("text", "")), str(output.get("evalue", ""))]
    parts += [str(t) for t in output.get("traceback", [])]
    for value in output.get("data", {}).values():
        parts.append(value if isinstance(value, str) else str(value))
    return "\n".join(parts)
