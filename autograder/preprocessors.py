"""Feedback preprocessors: what a student may see of a graded notebook.

nbgrader's ``ClearHiddenTests`` removes hidden test code from the cells, but
the traceback of a failed hidden test still prints its lines. Here every
error output of a graded test cell is cut down to ``Name: message`` — the
messages are written for students (``course_lib.grading``), the code is not.
"""

from __future__ import annotations

from nbgrader.preprocessors import ClearHiddenTests


class HideHiddenTests(ClearHiddenTests):
    """Clear hidden test regions and reduce test-cell tracebacks to their message."""

    def preprocess_cell(self, cell, resources, cell_index):
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and meta.get("grade"):
            self._remove_hidden_test_region(cell)
            for output in cell.get("outputs", []):
                if output.get("output_type") == "error":
                    output["traceback"] = [f"{output.get('ename', 'Error')}: {output.get('evalue', '')}"]
        return cell, resources
