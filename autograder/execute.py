"""Run a submitted notebook so that no single cell can cost the rest.

nbgrader's own ``Execute`` gives up on the whole notebook when the kernel
dies (``os._exit``) or ignores the interrupt sent at a cell's time limit (a
loop that swallows ``KeyboardInterrupt``): the submission loses every point
and its graded folder is deleted. :class:`BoundedExecute` instead marks that
cell as failed, starts a fresh kernel, replays the cells that had completed,
and goes on — so such a submission loses only what a plain infinite loop
loses. It also bounds the notebook as a whole (cells after
``notebook_timeout`` are marked "not run") and the output a cell may keep.

Before each graded test cell it also re-imports ``course_lib.grading`` from
disk and rebinds ``grading`` in the notebook, so a submission that replaced
the helpers at run time (``grading.expect = lambda *a: None``) is tested by
the real ones — and the tampering is recorded. (Code in the same process
can still subvert Python itself; see the README's threat model.)

Every incident is recorded in ``resources["incidents"]`` and, when
``incident_file`` is set, appended to that file as JSON lines, which is how
the grading worker learns a row's status (timeout, kernel_died).
"""

from __future__ import annotations

import json
import time

from jupyter_core.utils import run_sync
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat.v4 import new_code_cell, new_output
from nbgrader.preprocessors import Execute
from traitlets import Integer, Unicode

TAMPERED = "COURSE-GRADING-TAMPERED"
# Run silently before each graded cell when the notebook uses course_lib.grading:
# drop IPython event hooks the student registered (they run before every cell
# and could patch the helpers again), then re-import the helpers from disk.
# The marker is assembled at run time so that printing this cell's source
# (a student's pre_run_cell hook) cannot fake it.
RESTORE_GRADING = """
import sys as _c_sys, importlib as _c_imp
_c_ip = get_ipython()
for _c_event in ("pre_execute", "pre_run_cell", "post_execute", "post_run_cell"):
    _c_ip.events.callbacks[_c_event] = [
        _c_f for _c_f in _c_ip.events.callbacks[_c_event]
        if (getattr(_c_f, "__module__", "") or "").split(".")[0] in ("IPython", "ipykernel", "matplotlib_inline", "ipywidgets")]
if "course_lib.grading" in _c_sys.modules:
    _c_old = _c_sys.modules.pop("course_lib.grading")
    grading = _c_imp.import_module("course_lib.grading")
    for _c_name in grading.__all__:
        _c_new = getattr(grading, _c_name)
        if hasattr(_c_new, "__code__"):
            _c_was = getattr(_c_old, _c_name, None)
            if getattr(getattr(_c_was, "__code__", None), "co_code", None) != _c_new.__code__.co_code:
                print("COURSE-GRADING-" + "TAMPERED", _c_name)
                break
    del _c_old, _c_name, _c_new
del _c_sys, _c_imp, _c_ip, _c_event
"""


class BoundedExecute(Execute):
    """nbgrader's Execute with per-notebook, dead-kernel and output bounds."""

    notebook_timeout = Integer(
        240, help="Seconds after which no further cell is started."
    ).tag(config=True)
    max_output_chars = Integer(
        100_000, help="Characters of output one cell may keep; the rest is dropped."
    ).tag(config=True)
    incident_file = Unicode(
        "", help="Append incidents (timeouts, dead kernels) here as JSON lines."
    ).tag(config=True)

    def preprocess(self, nb, resources=None, km=None):
        self._deadline = time.monotonic() + self.notebook_timeout
        self._completed: list[int] = []
        self._output_chars: dict[int, int] = {}
        self._incidents: list[dict] = []
        self.error_on_timeout = {
            "ename": "CellTimeoutError",
            "evalue": f"this cell did not finish within {self.timeout} s and was interrupted",
            "traceback": [
                f"CellTimeoutError: this cell did not finish within {self.timeout} s "
                "and was interrupted. Look for a loop that never ends, a join() or "
                "get() without a timeout, or a recv() that waits for data that never comes."
            ],
        }
        try:
            return super().preprocess(nb, resources, km)
        finally:
            if resources is not None:
                resources["incidents"] = self._incidents
            if self.incident_file:
                with open(self.incident_file, "a", encoding="utf-8") as f:
                    for incident in self._incidents:
                        f.write(json.dumps(incident) + "\n")

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type != "code" or not cell.source.strip():
            return cell, resources
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id", f"cell {index}")
        if time.monotonic() > self._deadline:
            self._fail(cell, grade_id, "notebook_timeout",
                       f"not run: the notebook reached its time limit of {self.notebook_timeout} s")
            return cell, resources
        try:
            if cell.metadata.get("nbgrader", {}).get("grade"):
                self._restore_grading(index, grade_id)
            cell, resources = super().preprocess_cell(cell, resources, index)
        except DeadKernelError:
            self._fail(cell, grade_id, "kernel_died",
                       "the kernel died while running this cell (os._exit, exit(), a crash or "
                       "too much memory); the grader started a fresh kernel, re-ran the cells "
                       "before this one and went on")
            self._restart_and_replay()
            return cell, resources
        except CellTimeoutError:
            self._fail(cell, grade_id, "timeout",
                       f"this cell did not finish within {self.timeout} s and ignored the "
                       "interrupt; the grader replaced the kernel, re-ran the cells before "
                       "this one and went on")
            self._restart_and_replay()
            return cell, resources
        if any(o.get("ename") == "CellTimeoutError" for o in cell.get("outputs", [])):
            self._incidents.append({"kind": "timeout", "cell": grade_id,
                                    "message": f"interrupted after {self.timeout} s"})
        else:
            self._completed.append(index)
        return cell, resources

    def _restore_grading(self, index, grade_id):
        """Give the test cell the real course_lib.grading; record it if it had been replaced."""
        probe = new_code_cell(RESTORE_GRADING)
        self.execute_cell(probe, index, store_history=False)
        printed = "".join(o.get("text", "") for o in probe.outputs if o.get("output_type") == "stream")
        if any(line.startswith(TAMPERED) for line in printed.splitlines()) and not any(i["kind"] == "tampering" for i in self._incidents):
            self._incidents.append({"kind": "tampering", "cell": grade_id,
                                    "message": "course_lib.grading had been replaced at run time; "
                                               "the real helpers were restored before the tests"})

    def _fail(self, cell, grade_id, kind, message):
        """Give ``cell`` an error output, so nbgrader scores it 0, and record why."""
        cell.outputs = [o for o in cell.get("outputs", []) if o.get("output_type") != "error"]
        cell.outputs.append(new_output("error", ename=kind, evalue=message,
                                       traceback=[f"{kind}: {message}"]))
        self._incidents.append({"kind": kind, "cell": grade_id, "message": message})

    def _restart_and_replay(self):
        """Replace the kernel and re-run the cells that had completed, outputs discarded."""
        try:
            if self.kc is not None:
                self.kc.stop_channels()
            run_sync(self.km.restart_kernel)(now=True)
            self.start_new_kernel_client()
        except Exception as exc:  # no kernel at all: the rest cannot run
            self._deadline = 0
            self._incidents.append({"kind": "kernel_died", "cell": None,
                                    "message": f"could not start a fresh kernel: {exc}"})
            return
        for index in self._completed:
            replay = self.nb.cells[index].copy()
            replay.outputs = []
            try:
                self.execute_cell(replay, index, store_history=False)
            except (DeadKernelError, CellTimeoutError):
                self._deadline = 0
                self._incidents.append({"kind": "kernel_died", "cell": None,
                                        "message": "the kernel died again while replaying"})
                return

    def output(self, outs, msg, display_id, cell_index):
        """Keep at most ``max_output_chars`` of output per cell, then one note."""
        used = self._output_chars.get(cell_index, 0)
        if used > self.max_output_chars:
            return None
        used += len(json.dumps(msg.get("content", {}), default=str))
        self._output_chars[cell_index] = used
        if used > self.max_output_chars:
            self._incidents.append({"kind": "output_capped", "cell": cell_index,
                                    "message": f"output beyond {self.max_output_chars} characters dropped"})
            note = new_output("stream", name="stderr",
                              text=f"\n[output truncated: more than {self.max_output_chars} characters]\n")
            outs.append(note)
            return None
        return super().output(outs, msg, display_id, cell_index)
