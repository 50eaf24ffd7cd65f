"""Run a submitted notebook so that no single cell can cost the rest.

nbgrader's own ``Execute`` gives up on the whole notebook when the kernel
dies (``os._exit``) or ignores the interrupt sent at a cell's time limit (a
loop that swallows ``KeyboardInterrupt``): the submission loses every point
and its graded folder is deleted. :class:`BoundedExecute` instead marks that
cell as failed, starts a fresh kernel, replays the cells that had completed,
and goes on — so such a submission loses only what a plain infinite loop
loses. It also bounds the notebook as a whole (cells after
``notebook_timeout`` are marked "not run") and the output a cell may keep.

Kernels are started by :class:`autograder.audit.JudgeKernelManager` (or its
sandboxed subclass): safe path, and an audit hook that reports what student
code does to the interpreter. After the run, every reported event that has
one of the notebook's *solution* cells on its stack becomes a ``tampered``
incident naming the cell and the line; the grader withholds the points.

Test cells are not executed as cells: :mod:`autograder.referee` has the
kernel's trusted runner run each one (or runs it here, with data), and the
cell gets the outputs of that verdict. Solution and lesson cells run as
ordinary cells.

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

from . import referee


__all__ = ["ERROR_CHARS", "CAPPED_MESSAGES", "solution_cells_by_file", "BoundedExecute"]

FINAL_CHECK_TAG = "judge-final-check"
ERROR_CHARS = 5000  # of an error's message, and of each traceback line
#: Message kinds that carry what a cell outputs (and so count against its cap).
CAPPED_MESSAGES = frozenset({"stream", "display_data", "update_display_data", "execute_result",
                             "comm_open", "comm_msg"})


def solution_cells_by_file(nb) -> dict[str, tuple[str, str]]:
    """The file name ipykernel gives each solution cell's code -> (grade id, source)."""
    from ipykernel.compiler import get_tmp_hash_seed, murmur2_x86

    out = {}
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and meta.get("solution") and not meta.get("grade"):
            out[f"{murmur2_x86(cell.source, get_tmp_hash_seed())}.py"] = (meta.get("grade_id", "?"), cell.source)
    return out

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
    prestart_lesson = Unicode(
        "", help="Start, while this notebook runs, the judge kernel the next submission of this lesson "
                 "will take (autograder.warm); empty: never."
    ).tag(config=True)

    def __init__(self, *args, **kwargs):
        from .audit import JudgeKernelManager

        kwargs.setdefault("kernel_manager_class", JudgeKernelManager)
        super().__init__(*args, **kwargs)

    def create_kernel_manager(self):
        from . import warm

        tests = getattr(self, "_kernel_tests", {})
        km = warm.take(self.kernel_manager_class, tests)  # started ahead for this lesson, if one waits
        if km is None:
            km = super().create_kernel_manager()
            km.judge_tests = tests
        else:
            self.km = km
        self._judge_km = km
        if self.prestart_lesson:
            from .sandbox import SandboxKernelManager

            warm.prepare(self.kernel_manager_class, self.config, tests, lesson=self.prestart_lesson,
                         sandboxed=issubclass(self.kernel_manager_class, SandboxKernelManager))
        return km

    def preprocess(self, nb, resources=None, km=None):
        self._judge_km = None
        self._deadline = time.monotonic() + self.notebook_timeout
        self._completed: list[int] = []
        self._output_chars: dict[int, int] = {}
        self._capped: set[int] = set()
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
        self._plans = referee.plan_tests(nb)
        self._kernel_tests = {g: p.source for g, p in self._plans.items() if not p.here}
        self._here_namespace: dict = {}
        self._test_count = 0
        self._hidden_ran = False  # has a test with hidden checks run yet (see _judge_test)
        # A last, silent cell: its start is the audit's final integrity check (see course_lib.judge).
        nb.cells.append(new_code_cell("pass", metadata={"tags": [FINAL_CHECK_TAG]}))
        try:
            return super().preprocess(nb, resources, km)
        finally:
            nb.cells.pop()
            self._audit_incidents(nb)
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
        final_check = FINAL_CHECK_TAG in cell.metadata.get("tags", [])
        if time.monotonic() > self._deadline and not final_check:  # the final check is instant: it runs
            self._fail(cell, grade_id, "notebook_timeout",
                       f"not run: the notebook reached its time limit of {self.notebook_timeout} s")
            return cell, resources
        service = getattr(self._judge_km, "peer_service", None)
        if service is not None:
            service.cell = grade_id
        plan = self._plans.get(grade_id) if cell.metadata.get("nbgrader", {}).get("grade") else None
        if plan is not None:
            try:
                self._judge_test(cell, plan)
            finally:
                if service is not None:
                    service.cell = None
            if service is not None:
                self._judge_by_peer(cell, grade_id, service)
            return cell, resources
        try:
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
        finally:
            if service is not None:
                service.cell = None
        if any(o.get("ename") == "CellTimeoutError" for o in cell.get("outputs", [])):
            self._incidents.append({"kind": "timeout", "cell": grade_id,
                                    "message": f"interrupted after {self.timeout} s"})
        else:
            self._completed.append(index)
        if service is not None:
            self._judge_by_peer(cell, grade_id, service)
        return cell, resources

    def _judge_test(self, cell, plan) -> None:
        """Have the referee judge one test cell; its outputs are the verdict's."""
        channel = getattr(self._judge_km, "audit", None)
        if channel is None:
            raise RuntimeError("test cells need a judge kernel (autograder.audit.JudgeKernelManager)")
        try:
            if plan.here:
                verdict = referee.judge_here(channel, plan, self.timeout, self._here_namespace)
            else:
                verdict = referee.judge_in_kernel(channel, plan, self.timeout)
        except Exception as error:  # the grader's own fault: this test scores 0, the rest is graded
            self.log.exception("the referee failed on %s", plan.grade_id)
            verdict = referee.Verdict(plan.grade_id, "failed", "GradingError",
                                      f"the grader could not judge this test ({type(error).__name__}: {error})")
            self._incidents.append({"kind": "grading_error", "cell": plan.grade_id,
                                    "message": f"the grader could not judge this test: {type(error).__name__}: "
                                               f"{str(error)[:200]}"})
        self._test_count += 1
        cell.execution_count = self._test_count
        # Hidden checks hand hidden inputs to student code, which can keep them and write them into any
        # later message (its exceptions, the values a check quotes). So from the first test with hidden
        # checks on (and within it, from the first statement that may follow its hidden block), no message
        # reaches the student's feedback: only where the test failed (see autograder.preprocessors).
        after_hidden = self._hidden_ran or plan.hidden_may_have_run(verdict.top)
        self._hidden_ran = self._hidden_ran or bool(plan.hidden)
        meta = referee.verdict_metadata(verdict, plan, after_hidden=after_hidden)
        cell.outputs = referee.outputs(verdict, meta["public"])
        cell.metadata.setdefault("course", {})["verdict"] = meta
        if verdict.status == "interrupted":
            self._incidents.append({"kind": "timeout", "cell": plan.grade_id,
                                    "message": f"interrupted after {self.timeout} s"})
        elif verdict.status == "timeout":
            self._incidents.append({"kind": "timeout", "cell": plan.grade_id,
                                    "message": f"did not finish within {self.timeout} s and ignored the "
                                               "interrupt; the grader replaced the kernel, re-ran the cells "
                                               "before this one and went on"})
            self._restart_and_replay()
        elif verdict.status == "kernel_died":
            self._incidents.append({"kind": "kernel_died", "cell": plan.grade_id,
                                    "message": "the kernel died while running this test (os._exit, exit(), a "
                                               "crash or too much memory); the grader started a fresh kernel, "
                                               "re-ran the cells before this one and went on"})
            self._restart_and_replay()

    def _judge_by_peer(self, cell, grade_id: str, service) -> None:
        """A test that asks the peer passes only if the grader's own verdicts agree (see autograder.peer)."""
        from .peer import CHECKS, asks_peer

        meta = cell.metadata.get("nbgrader", {})
        if not (meta.get("grade") and asks_peer(cell.source)):
            return
        if any(o.get("output_type") == "error" for o in cell.get("outputs", [])):
            return  # failed in the kernel already: nothing to overrule
        verdicts = service.verdicts_for(grade_id)
        failed = [v for v in verdicts if not v.ok]
        if failed:
            why = (f"the grader's own check failed ({failed[0].message[:300]}) "
                   "though the kernel reported this test as passed")
        elif not any(v.op in CHECKS for v in verdicts):
            why = "none of this test's checks reached the grader, though the kernel reported it as passed"
        else:
            return
        cell.outputs.append(new_output("error", ename="GraderCheckFailed", evalue=why,
                                       traceback=[f"GraderCheckFailed: {why}"]))
        self._incidents.append({"kind": "tampered", "cell": grade_id, "message": why})

    def _audit_incidents(self, nb) -> None:
        """Turn the audit channel's reports into incidents: tampering from solution cells."""
        audit = getattr(self._judge_km, "audit", None)
        if audit is None:
            return
        cells = solution_cells_by_file(nb)
        seen = set()
        for event in audit.events:
            for file_name, line in event.get("cells") or []:
                if file_name not in cells or (file_name, event["event"]) in seen:
                    continue
                seen.add((file_name, event["event"]))
                grade_id, source = cells[file_name]
                lines = source.splitlines()
                text = lines[line - 1].strip() if isinstance(line, int) and 0 < line <= len(lines) else "?"
                detail = f" ({event['detail']})" if event.get("detail") else ""
                self._incidents.append({"kind": "tampered", "cell": grade_id,
                                        "message": f"line {line} `{text[:120]}` raised {event['event']}{detail}"})
                break
        from course_lib.judge.audit import PROCESS_EVENTS

        for event in audit.events:
            if event["event"] in PROCESS_EVENTS and not event.get("cells") and ("process", None) not in seen:
                seen.add(("process", None))
                self._incidents.append({"kind": "tampered", "cell": None,
                                        "message": f"while the notebook ran, {event.get('detail')} "
                                                   f"({event['event']})"})
            if event["event"] == "integrity" and ("integrity", event.get("detail")) not in seen:
                seen.add(("integrity", event.get("detail")))
                self._incidents.append({"kind": "tampered", "cell": None,
                                        "message": f"while the notebook ran, {event.get('detail')}"})
        for report in audit.integrity:
            key = ("integrity", report.get("integrity"))
            if key not in seen:
                seen.add(key)
                self._incidents.append({"kind": "tampered", "cell": report.get("test"),
                                        "message": f"{report.get('where', 'while a test ran')}, "
                                                   f"{report.get('integrity')}"})
        for why in audit.cut:
            self._incidents.append({"kind": "tampered", "cell": None, "message": why})
        if audit.hellos == 0 and self._completed:
            self._incidents.append({"kind": "audit_missing", "cell": None,
                                    "message": "the judge kernel's audit channel never opened; not graded"})

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

    def process_message(self, msg, cell, cell_index):
        """Keep at most ``max_output_chars`` of what a cell sends, whatever its kind, then one note.

        Counted: streams, displays *and display updates*, results, and widget
        comm traffic (whose state nbclient would otherwise keep in the
        notebook's metadata without any bound). An error output over the cap
        is not lost: nbgrader restores a failed cell's error from its reply.
        """
        kind = msg.get("msg_type") or msg.get("header", {}).get("msg_type")
        if kind == "execute_result" and cell.metadata.get("nbgrader", {}).get("grade"):
            # nbgrader would read a test cell's result as partial credit (any text: full marks);
            # this course's tests pass or fail by their errors alone.
            return None
        if kind == "error":  # kept whatever the cap (a failed test stays failed), but bounded
            content = msg.get("content", {})
            content["evalue"] = str(content.get("evalue", ""))[:ERROR_CHARS]
            content["traceback"] = [str(t)[:ERROR_CHARS] for t in (content.get("traceback") or [])[:50]]
        if kind in CAPPED_MESSAGES:
            size = len(json.dumps(msg.get("content", {}), default=str))
            size += sum(len(b) for b in msg.get("buffers") or [])
            used = self._output_chars.get(cell_index, 0) + size
            self._output_chars[cell_index] = used
            if used > self.max_output_chars:
                if cell_index not in self._capped:
                    self._capped.add(cell_index)
                    self._incidents.append({"kind": "output_capped", "cell": cell_index,
                                            "message": f"output beyond {self.max_output_chars} characters dropped"})
                    cell.setdefault("outputs", []).append(new_output(
                        "stream", name="stderr",
                        text=f"\n[output truncated: more than {self.max_output_chars} characters]\n"))
                return None
        return super().process_message(msg, cell, cell_index)
