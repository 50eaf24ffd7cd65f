"""JupyterLab and headless Chromium, started and driven for the browser tests.

What it models: a student's session — JupyterLab serving the student release
on loopback, a browser that opens a lesson, runs it from the Run menu and
looks at what appears. What it trades off: JupyterLab is started with
``expose_app_in_browser`` so the tests can *read* cell ids, metadata and
output models (exact: which cell raised what) and wait on the kernel's real
state; every action a student takes (Run menu, clicks, typing) still goes
through the page. One JupyterLab and one browser page serve the whole
session (start-up costs several seconds); each test opens its notebook and
closes it, shutting its kernel down, when it is done.

Every wait is bounded (``timeout=`` in ms, Playwright's clock) and waits on a
condition (kernel idle, execution counts, image decoded, widget text), never
on a fixed sleep.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[2]
# COURSE_NOTEBOOKS points at another set of lessons, as for the `course` command.
NOTEBOOKS = Path(os.environ.get("COURSE_NOTEBOOKS", REPO / "notebooks")).resolve()
SCREENSHOTS = REPO / "build" / "screenshots"
# Debian's package; CHROMIUM=/path/to/chromium points the tests at another build.
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_FLAGS = [
    "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
INSTALL_HINT = "apt-get install chromium"

# Tags that mark a cell as part of an exercise, or as one that calls an exercise's
# function (it fails in the student version until the student solves it).
# "raises-exception" is JupyterLab's own: Run All does not stop at such a cell.
EXERCISE_TAGS = {"exercise", "uses-exercise", "depends-on-exercise", "raises-exception"}

# Timeouts (ms) for Playwright waits; each is an upper bound, not a delay.
LAB_START_S = 90
OPEN_MS = 60_000
RUN_ALL_MS = 120_000
RENDER_MS = 20_000
WIDGET_MS = 20_000


class LabError(RuntimeError):
    """JupyterLab did not start or stop as expected."""


# --------------------------------------------------------------------------
# the student release


def released_lessons() -> list[str]:
    """Lesson ids present under notebooks/ (folders NN-topic holding a notebook)."""
    if not NOTEBOOKS.is_dir():
        return []
    return sorted(p.name for p in NOTEBOOKS.iterdir()
                  if p.is_dir() and re.match(r"^\d\d-", p.name) and any(p.glob("*.ipynb")))


def build_release(out: Path) -> Path:
    """Run ``course release --out OUT`` (the command an instructor runs) and return OUT."""
    course = Path(sys.executable).with_name("course")
    command = [str(course)] if course.exists() else [sys.executable, "-m", "autograder.cli"]
    result = subprocess.run([*command, "release", "--out", str(out)], cwd=REPO,
                            capture_output=True, text=True, timeout=300,
                            env={**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"})
    if result.returncode != 0:
        raise LabError(f"course release failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return out


def is_exercise_cell(cell) -> bool:
    """nbgrader solution / autograded test / task cells, and cells tagged as using an exercise."""
    meta = cell.get("metadata", {})
    nbgrader = meta.get("nbgrader", {})
    if nbgrader.get("solution") or nbgrader.get("grade") or nbgrader.get("task"):
        return True
    return bool(EXERCISE_TAGS & set(meta.get("tags", [])))


def exercise_cell_ids(notebook: Path) -> dict[str, bool]:
    """{cell id: is exercise} of a released lesson, read as it is (the test runs it untouched).

    The release itself must let Run All reach the end: every cell that raises
    while the exercises are untouched carries JupyterLab's ``raises-exception``
    tag, so nothing here changes the notebook.
    """
    nb = nbformat.read(notebook, as_version=4)
    return {cell.id: is_exercise_cell(cell) for cell in nb.cells}


#: The first line of an untouched exercise's error, as course_lib.untouched shows it.
NOT_ATTEMPTED = "⏳ not attempted yet"
#: A demo cell whose traceback the lesson states on purpose (a thread that raises, a spawn that fails).
STATED_TRACEBACK_TAG = "shows-traceback"
#: The course's own JupyterLab defaults, which `make lab` (and `make test`) install.
COURSE_LAB_SETTINGS = REPO / "autograder" / "lab_overrides.json"


def install_course_lab_settings() -> Path:
    """Put the course's overrides.json where this JupyterLab reads it, as `make lab-settings` does."""
    target = Path(sys.prefix) / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
    wanted = COURSE_LAB_SETTINGS.read_bytes()
    if not target.is_file() or target.read_bytes() != wanted:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(wanted)
    return target


# --------------------------------------------------------------------------
# JupyterLab


def instructor_course(course: Path, exchange: Path) -> str:
    """An nbgrader course folder holding the lesson sources; return the nbgrader_config.py text for it.

    The lessons are copied (not released): formgrader lists what is in source/.
    """
    for lesson in released_lessons():
        shutil.copytree(NOTEBOOKS / lesson, course / "source" / lesson,
                        ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    exchange.mkdir(parents=True, exist_ok=True)
    return (f"c = get_config()\n"
            f"c.CourseDirectory.root = {str(course)!r}\n"
            f"c.CourseDirectory.course_id = 'threads-sockets'\n"
            f"c.Exchange.root = {str(exchange)!r}\n")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def write_lab_settings(settings_dir: Path) -> None:
    """User settings for the tests: every cell kept in the page, nothing saved.

    The news prompt is *not* turned off here: the course's own settings
    (:data:`COURSE_LAB_SETTINGS`, installed as `make lab` does) must do that.
    """
    settings = {
        # Without windowing, cells below the fold exist in the DOM (outputs checkable,
        # full-notebook screenshots possible); without the blank space past the last
        # cell (it grows with the viewport, so a tall viewport never holds the notebook).
        "@jupyterlab/notebook-extension/tracker.jupyterlab-settings":
            {"windowingMode": "none", "scrollPastEnd": False},
        # A notebook left open must not be saved with outputs: the next test opening
        # it would find cells already run.
        "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    }
    for name, value in settings.items():
        path = settings_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value), encoding="utf-8")


@dataclass
class Lab:
    """A running JupyterLab: its URL, token, root folder and process."""

    url: str
    token: str
    root: Path
    process: subprocess.Popen
    log: Path
    env: dict = field(repr=False, default_factory=dict)

    def api(self, path: str, method: str = "GET", timeout: float = 10.0):
        request = urllib.request.Request(f"{self.url}{path}", method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
        return json.loads(body) if body else None

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


def start_lab(root: Path, home: Path, nbgrader_config: str = "", attempts: int = 3) -> Lab:
    """Start ``jupyter lab`` on 127.0.0.1 with a random port and token, config isolated under ``home``.

    ``nbgrader_config`` is written to the isolated config dir as nbgrader_config.py
    (where nbgrader's server extensions read it).
    """
    jupyter = Path(sys.executable).with_name("jupyter")
    if not jupyter.exists():
        jupyter = Path(shutil.which("jupyter") or "jupyter")
    dirs = {name: home / name for name in ("config", "data", "runtime", "settings", "workspaces",
                                           "ipython")}
    for path in dirs.values():
        path.mkdir(parents=True, exist_ok=True)
    write_lab_settings(dirs["settings"])
    install_course_lab_settings()
    if nbgrader_config:
        (dirs["config"] / "nbgrader_config.py").write_text(nbgrader_config, encoding="utf-8")
    env = {
        **os.environ,
        "PATH": f"{jupyter.parent}:{os.environ.get('PATH', '')}",
        "JUPYTER_CONFIG_DIR": str(dirs["config"]),
        "JUPYTER_RUNTIME_DIR": str(dirs["runtime"]),
        "JUPYTERLAB_SETTINGS_DIR": str(dirs["settings"]),
        "JUPYTERLAB_WORKSPACES_DIR": str(dirs["workspaces"]),
        "IPYTHONDIR": str(dirs["ipython"]),
        "JUPYTER_PLATFORM_DIRS": "1",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("JUPYTER_TOKEN", None)
    last_error = ""
    for attempt in range(attempts):
        port, token = free_port(), secrets.token_hex(24)
        command = [str(jupyter), "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
                   "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
                   f"--ServerApp.root_dir={root}", "--LabApp.expose_app_in_browser=True",
                   "--ServerApp.open_browser=False"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            command.append("--allow-root")  # jupyter refuses to run as root without it
        log = home / f"jupyter-lab-{attempt}.log"
        with open(log, "wb") as log_file:
            process = subprocess.Popen(command, cwd=root, env=env, stdout=log_file,
                                       stderr=subprocess.STDOUT, start_new_session=True)
        lab = Lab(f"http://127.0.0.1:{port}", token, root, process, log, env)
        deadline = time.monotonic() + LAB_START_S
        while time.monotonic() < deadline:
            if process.poll() is not None:
                last_error = f"exited with {process.returncode}:\n{lab.log_text()[-3000:]}"
                break
            try:
                lab.api("/api/status", timeout=2)
                return lab
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                # not listening yet: wait for the process (bounded), not a blind sleep
                try:
                    process.wait(timeout=0.2)
                except subprocess.TimeoutExpired:
                    pass
        else:
            stop_lab(lab)
            raise LabError(f"JupyterLab did not answer within {LAB_START_S} s:\n{lab.log_text()[-3000:]}")
        stop_lab(lab)
    raise LabError(f"JupyterLab did not start ({attempts} attempts); last: {last_error}")


def _process_tree(pid: int) -> list:
    import psutil

    try:
        parent = psutil.Process(pid)
        return [parent, *parent.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def stop_lab(lab: Lab, timeout: float = 20.0) -> list[str]:
    """Shut JupyterLab down (kernels first, through its API), then make sure its process tree is gone.

    Returns a description of every process that had to be killed (empty when
    the clean shutdown worked).
    """
    import psutil

    tree = _process_tree(lab.process.pid)
    if lab.process.poll() is None:
        try:
            lab.api("/api/shutdown", method="POST", timeout=5)
        except (urllib.error.URLError, OSError):
            lab.process.send_signal(signal.SIGTERM)
        try:
            lab.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            lab.process.send_signal(signal.SIGTERM)
            try:
                lab.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                lab.process.kill()
                lab.process.wait(timeout=5)
    killed = []
    for proc in tree[1:]:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                killed.append(f"{proc.pid} {' '.join(proc.cmdline())[:120]}")
                proc.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(tree[1:], timeout=5)
    return killed


# --------------------------------------------------------------------------
# the page: JupyterLab's application, read through window.jupyterapp

JS_PANEL = """
function panelById(id) {
  for (const w of window.jupyterapp.shell.widgets('main')) { if (w.id === id) return w; }
  throw new Error('no notebook panel ' + id);
}
function scroller(id) {
  const node = panelById(id).content.node;
  return node.querySelector('.jp-WindowedPanel-outer') || node;
}
"""


def js(body: str) -> str:
    """A function expression with the helper ``panelById`` in scope."""
    return f"(arg) => {{ {JS_PANEL} return ({body})(arg); }}"


def wait_for_lab(page, lab: Lab) -> None:
    """Load JupyterLab (token in the URL sets the login cookie) and wait until it is restored."""
    page.goto(f"{lab.url}/lab?token={lab.token}", timeout=OPEN_MS)
    page.wait_for_function("() => window.jupyterapp !== undefined", timeout=OPEN_MS)
    page.evaluate("async () => { await window.jupyterapp.restored; }")
    page.locator("#jp-main-dock-panel").wait_for(timeout=OPEN_MS)
    # More room for the notebook: the file browser is not under test.
    page.evaluate("() => window.jupyterapp.shell.collapseLeft()")


def open_notebook(page, path: str) -> str:
    """Open ``path`` (relative to the lab root) as a notebook; wait for its kernel; return the panel id."""
    panel_id = page.evaluate(
        """async (path) => {
             const app = window.jupyterapp;
             const panel = await app.commands.execute('docmanager:open', {path, factory: 'Notebook'});
             await panel.context.ready;
             app.shell.activateById(panel.id);
             return panel.id;
           }""", path)
    panel = page.locator(f"[id='{panel_id}']")
    # Kernel name first, then idle: idle alone races with kernel start-up.
    panel.locator(".jp-Toolbar-kernelName").filter(has_text="Python 3").wait_for(timeout=OPEN_MS)
    panel.locator('.jp-Notebook-ExecutionIndicator[data-status="idle"]').wait_for(timeout=OPEN_MS)
    page.wait_for_function(js("""(id) => {
        const k = panelById(id).sessionContext.session?.kernel;
        return k && k.status === 'idle' && k.connectionStatus === 'connected'; }"""),
        arg=panel_id, timeout=OPEN_MS)
    return panel_id


def close_notebook(page, panel_id: str) -> None:
    """Shut the notebook's kernel down and close its tab without saving (the copy is the test's)."""
    page.evaluate(js("""async (id) => {
        let panel; try { panel = panelById(id); } catch (e) { return; }
        await panel.sessionContext.shutdown();
        panel.context.model.dirty = false;
        panel.dispose(); }"""), panel_id)


def click_menu(page, menu: str, item: str) -> None:
    """Open a menu of the menu bar and click one of its items (as a person would)."""
    page.locator(".lm-MenuBar-itemLabel").filter(has_text=re.compile(rf"^{re.escape(menu)}$")).click()
    page.locator(".lm-Menu-itemLabel").filter(
        has_text=re.compile(rf"^{re.escape(item)}$")).first.click()


def wait_until_run(page, panel_id: str, upto: int | None = None, timeout: int = RUN_ALL_MS) -> None:
    """Wait until every non-empty code cell (before index ``upto``) has run and the kernel is idle."""
    try:
        page.wait_for_function(js("""([id, upto]) => {
            const panel = panelById(id);
            const k = panel.sessionContext.session?.kernel;
            if (!k || k.status !== 'idle') return false;
            const cells = panel.content.widgets.slice(0, upto === null ? undefined : upto);
            return cells.every(c => c.model.type !== 'code' || !c.model.sharedModel.getSource().trim()
                                    || c.model.executionCount !== null);
          }"""), arg=[panel_id, upto], timeout=timeout)
    except Exception as error:
        pending = page.evaluate(js("""([id, upto]) => panelById(id).content.widgets
            .slice(0, upto === null ? undefined : upto)
            .filter(c => c.model.type === 'code' && c.model.sharedModel.getSource().trim()
                         && c.model.executionCount === null).map(c => c.model.id)"""),
            [panel_id, upto])
        raise AssertionError(f"cells did not finish within {timeout / 1000:.0f} s; not run: {pending}") from error
    page.locator(f"[id='{panel_id}'] .jp-Notebook-ExecutionIndicator[data-status='idle']").wait_for(
        timeout=timeout)


def run_all(page, panel_id: str) -> None:
    """Run > Run All Cells, then wait until every cell has run."""
    assert_not_run_yet(page, panel_id)
    click_menu(page, "Run", "Run All Cells")
    wait_until_run(page, panel_id)


def assert_not_run_yet(page, panel_id: str) -> None:
    """The notebook holds no execution count: waiting for counts then means waiting for this run."""
    ran = page.evaluate(js("""(id) => panelById(id).content.widgets
        .filter(c => c.model.type === 'code' && c.model.executionCount !== null).map(c => c.model.id)"""),
        panel_id)
    assert not ran, f"the notebook was saved with cells already run: {ran[:5]}"


def cell_index(page, panel_id: str, cell_id: str) -> int:
    return page.evaluate(js("""([id, cellId]) =>
        panelById(id).content.widgets.findIndex(c => c.model.id === cellId)"""), [panel_id, cell_id])


def cell_locator(page, panel_id: str, index: int):
    return page.locator(f"[id='{panel_id}'] .jp-Notebook-cell").nth(index)


def run_up_to(page, panel_id: str, cell_id: str) -> int:
    """Select the cell after ``cell_id`` and use Run > Run All Above Selected Cell; return its index."""
    index = cell_index(page, panel_id, cell_id)
    assert index >= 0, f"cell {cell_id} not found"
    assert_not_run_yet(page, panel_id)
    cell_locator(page, panel_id, index + 1).locator(".jp-InputPrompt").click()
    click_menu(page, "Run", "Run All Above Selected Cell")
    wait_until_run(page, panel_id, upto=index + 1)
    return index


CELL_REPORT = js("""(id) => panelById(id).content.widgets.map((cell, index) => {
    const m = cell.model;
    const outputs = m.type === 'code' ? m.outputs.toJSON() : [];
    const area = Array.from(cell.node.querySelectorAll('.jp-OutputArea-output'));
    const imgs = area.flatMap(o => Array.from(o.querySelectorAll('img')));
    const has = (mime) => outputs.filter(o => o.data && o.data[mime] !== undefined).length;
    return {
      index, id: m.id, type: m.type,
      tags: m.getMetadata('tags') || [],
      empty: m.sharedModel.getSource().trim() === '',
      executionCount: m.type === 'code' ? m.executionCount : null,
      errors: outputs.filter(o => o.output_type === 'error')
                     .map(o => ({ename: o.ename, evalue: String(o.evalue).slice(0, 300),
                                 traceback: (o.traceback || []).map(t => String(t).slice(0, 300))})),
      stderr: outputs.filter(o => o.output_type === 'stream' && o.name === 'stderr')
                     .map(o => (Array.isArray(o.text) ? o.text.join('') : String(o.text)).slice(0, 2000)),
      errorsShown: area.filter(o => o.querySelector('pre') &&
                                  /Traceback|Error/.test(o.textContent || '') &&
                                  o.getAttribute('data-mime-type') === 'application/vnd.jupyter.stderr').length,
      images: has('image/png') + has('image/svg+xml') + has('image/jpeg'),
      imagesShown: imgs.filter(i => i.complete && i.naturalWidth > 0).length,
      widgets: has('application/vnd.jupyter.widget-view+json'),
      widgetViews: area.filter(o => o.querySelector('.jupyter-widgets')).length,
      widgetErrors: area.filter(o => /Error displaying widget|Error rendering/.test(o.textContent || ''))
                        .map(o => o.textContent.slice(0, 200)),
    };
  })""")


def cell_report(page, panel_id: str) -> list[dict]:
    """What each cell holds (from the notebook model) and shows (from the page)."""
    return page.evaluate(CELL_REPORT, panel_id)


def wait_for_images(page, panel_id: str, timeout: int = RENDER_MS) -> None:
    """Wait until every image output in the model is shown decoded in the page."""
    page.wait_for_function(js("""(id) => panelById(id).content.widgets.every(cell => {
        if (cell.model.type !== 'code') return true;
        const want = cell.model.outputs.toJSON().filter(o => o.data &&
            (o.data['image/png'] || o.data['image/svg+xml'] || o.data['image/jpeg'])).length;
        const shown = Array.from(cell.node.querySelectorAll('.jp-OutputArea-output img'))
            .filter(i => i.complete && i.naturalWidth > 0).length;
        return shown >= want; })"""), arg=panel_id, timeout=timeout)


def screenshot_notebook(page, panel_id: str, stem: Path, part_height: int = 16_000) -> list[Path]:
    """Save the whole notebook (not only the visible part) as ``STEM.png``, or ``STEM-1.png``, ... .

    The viewport is made as tall as the notebook (at most ``part_height``) so
    every cell is in the picture, as a student scrolling down sees it; a
    longer notebook is saved in parts, scrolled one part at a time. The
    viewport is restored afterwards.
    """
    stem.parent.mkdir(parents=True, exist_ok=True)
    for old in stem.parent.glob(f"{stem.name}*.png"):
        if re.fullmatch(rf"{re.escape(stem.name)}(-\d+)?\.png", old.name):
            old.unlink()
    size = page.viewport_size
    chrome, content = page.evaluate(js("""(id) => {
        const n = scroller(id);
        return [window.innerHeight - n.clientHeight, n.scrollHeight]; }"""), panel_id)
    height = max(size["height"], min(chrome + content + 4, part_height))
    page.set_viewport_size({"width": size["width"], "height": height})
    saved = []
    try:
        # The resize is laid out asynchronously: wait for the scroller to take the new height.
        page.wait_for_function(js("""([id, h, chrome]) => window.innerHeight === h &&
            Math.abs(scroller(id).clientHeight - (h - chrome)) <= 2"""), arg=[panel_id, height, chrome],
            timeout=RENDER_MS)
        view, content = page.evaluate(js("(id) => [scroller(id).clientHeight, scroller(id).scrollHeight]"),
                                      panel_id)
        tops = sorted({min(part * view, max(content - view, 0)) for part in range(-(-content // view))})
        parts = len(tops)
        for part, top in enumerate(tops):
            # Scroll, then wait for two animation frames: the scrolled part is painted.
            page.evaluate(js("""async ([id, top]) => { scroller(id).scrollTop = top;
                await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r))); }"""),
                [panel_id, top])
            page.wait_for_function(js("([id, top]) => Math.abs(scroller(id).scrollTop - top) <= 1"),
                                   arg=[panel_id, top], timeout=RENDER_MS)
            path = stem.with_name(f"{stem.name}.png" if parts == 1 else f"{stem.name}-{part + 1}.png")
            page.screenshot(path=str(path))
            assert_not_blank(path)
            saved.append(path)
    finally:
        page.set_viewport_size(size)
    return saved


def assert_not_blank(path: Path, top: int = 120, min_ink: float = 0.005) -> None:
    """A screenshot shows something below the tool bars (not an unpainted, white page)."""
    from PIL import Image

    with Image.open(path) as image:
        body = image.convert("L").crop((0, min(top, image.height - 1), image.width, image.height))
        histogram = body.histogram()
    ink = sum(histogram[:200]) / max(1, sum(histogram))
    assert ink >= min_ink, f"{path.name} looks blank ({ink:.2%} dark pixels)"


def screenshot_cell(page, panel_id: str, index: int, path: Path) -> Path:
    """Save one cell (input and outputs) as a PNG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    cell_locator(page, panel_id, index).screenshot(path=str(path))
    return path


def released_cell(release: Path, lesson: str, needle: str):
    """The first non-nbgrader code cell of the released lesson whose source contains ``needle``, or None."""
    notebooks = list((release / lesson).glob("*.ipynb")) if (release / lesson).is_dir() else []
    if not notebooks:
        return None
    nb = nbformat.read(notebooks[0], as_version=4)
    return next((c for c in nb.cells if c.cell_type == "code" and needle in c.source
                 and not c.metadata.get("nbgrader")), None)
