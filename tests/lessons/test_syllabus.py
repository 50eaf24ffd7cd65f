"""Is every script of the syllabus taught, in the lesson where it belongs?"""

import pytest

from tests.submissions import NOTEBOOKS

# (a line that identifies the syllabus script, the lesson that runs it)
SCRIPTS = [
    ("def print_numbers():", "01-processes-and-threads"),
    ("def print_with_delay():", "02-creating-and-sleeping-threads"),
    ('buffer.append("Item")', "03-race-conditions-and-locks"),
    ('buffer.append("Item")', "04-producer-consumer"),
    ("buffer = queue.Queue(maxsize=5)", "04-producer-consumer"),
    ("def day_time_client(", "07-daytime-client-server"),
    ("def day_time_server(", "07-daytime-client-server"),
    ("def chat_server(", "08-two-way-chat"),
    ("def chat_client(", "08-two-way-chat"),
]


@pytest.mark.parametrize("line,lesson", SCRIPTS)
def test_syllabus_script_appears_in_its_lesson(line, lesson):
    """Does the lesson's notebook contain (and so, by test_notebooks, run) the syllabus script?"""
    import nbformat

    nb = nbformat.read(NOTEBOOKS / lesson / f"{lesson}.ipynb", as_version=4)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert line in code, f"{lesson} does not run the syllabus script with {line!r}"
