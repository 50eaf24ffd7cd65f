"""Session fixtures for the browser tests: one student release, one JupyterLab, one Chromium.

Start-up is the expensive part (release ~15 s, JupyterLab and the page a few
seconds), so the release and JupyterLab are made once per session; every test
opens its own notebook and closes it again (kernel shut down). At the end
JupyterLab is shut down through its API; any process of it still alive is
killed and reported.

Chromium and its page live for one test module only. Between two calls
Playwright's sync API keeps its event loop marked as running in the main
thread (``wait_for_future``), so while it lives every ``asyncio.run()`` in the
same worker refuses to start, and clearing the mark kills Playwright's
connection. Ending it with the module keeps the mark inside the browser tests,
which ``--dist loadfile`` runs one after another.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from . import lab as lablib


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's Chromium, or a skip that says how to get it."""
    if not lablib.CHROMIUM.exists():
        pytest.skip(f"browser tests need Chromium at {lablib.CHROMIUM}: {lablib.INSTALL_HINT}")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("browser tests need Playwright's Python API: pip install playwright")
    return lablib.CHROMIUM


@pytest.fixture(scope="session")
def lab_home(tmp_path_factory, chromium) -> Path:
    return tmp_path_factory.mktemp("lab")


@pytest.fixture(scope="session")
def lab_root(lab_home) -> Path:
    """JupyterLab's root: student/ (the release) and course/ (the instructor's nbgrader folder)."""
    root = lab_home / "root"
    root.mkdir()
    return root


@pytest.fixture(scope="session")
def student_release(lab_root) -> Path:
    """The student version of every lesson, made by ``course release``."""
    return lablib.build_release(lab_root / "student")


@pytest.fixture(scope="session")
def nbgrader_config(lab_root, lab_home) -> str:
    """An instructor's course (lesson sources) under the lab root, where formgrader requires it."""
    return lablib.instructor_course(lab_root / "course", lab_home / "exchange")


@pytest.fixture(scope="session")
def exercise_cells(student_release) -> dict[str, dict[str, bool]]:
    """{lesson: {cell id: is exercise}} of the release, which the tests run as it is."""
    found = {}
    for lesson_dir in sorted(p for p in student_release.iterdir() if p.is_dir()):
        for notebook in lesson_dir.glob("*.ipynb"):
            found[lesson_dir.name] = lablib.exercise_cell_ids(notebook)
    return found


@pytest.fixture(scope="session")
def lab(lab_root, student_release, exercise_cells, nbgrader_config, lab_home):
    """JupyterLab serving the student release (and the course) on 127.0.0.1, random port and token."""
    running = lablib.start_lab(lab_root, lab_home / "jupyter", nbgrader_config)
    yield running
    killed = lablib.stop_lab(running)
    if killed:
        warnings.warn(f"processes left by JupyterLab had to be killed: {killed}")


@pytest.fixture(scope="module")
def browser(chromium):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(chromium), headless=True,
                                              args=lablib.CHROMIUM_FLAGS, timeout=60_000)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def lab_page(browser, lab):
    """One JupyterLab page for the module; console errors are kept on ``page.console_errors``."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.console_errors = []
    page.on("console", lambda msg: page.console_errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: page.console_errors.append(f"pageerror: {exc}"))
    lablib.wait_for_lab(page, lab)
    yield page
    context.close()


@pytest.fixture
def open_lesson(lab_page, student_release):
    """Open a released lesson in the page: ``panel_id = open_lesson(lesson)``; closed (kernel shut down) after."""
    opened = []

    def opener(lesson: str) -> str:
        notebook = next((student_release / lesson).glob("*.ipynb"))
        panel_id = lablib.open_notebook(lab_page, f"{student_release.name}/{lesson}/{notebook.name}")
        opened.append(panel_id)
        return panel_id

    yield opener
    for panel_id in opened:
        lablib.close_notebook(lab_page, panel_id)
