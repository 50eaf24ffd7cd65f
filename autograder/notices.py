"""A feedback page for a row nbgrader wrote none for: what happened, and what to do.

nbgrader writes feedback only for a notebook it could run. A student whose
notebook could not be read, was too large, or whose grading was stopped
would get nothing to act on; :func:`notice_page` gives them a page in the
same place (``feedback/<student>/<lesson>/<notebook>.html``) that says which
file, why, and what to hand in instead. The text comes from the row's
reason, which may quote a file name a student chose: it is escaped, and the
page goes through the same sanitiser as every feedback page.
"""

from __future__ import annotations

import html

__all__ = ["notice_page", "advice"]

_ADVICE = [  # (words in the reason, what the student can do), first match wins
    ("over the", "Clear the notebook's outputs (Kernel → Restart Kernel and Clear Outputs All), save it and "
                 "hand it in again."),
    ("not a readable notebook", "Open the notebook in JupyterLab: if it does not open, it was damaged on the "
                                "way; save a fresh copy from your work folder and hand it in again."),
    ("no notebook in the submission", "Hand in the lesson's notebook itself (the .ipynb file)."),
    ("symbolic link", "Hand in the notebook file itself, not a link to it."),
    ("not a regular file", "Hand in the notebook file itself."),
    ("did not finish within", "Grading stopped your notebook: look for a loop that never ends or a call that "
                              "waits forever, run `course check` on it, and hand it in again."),
    ("could not start", "This is a problem on the grader's side, not in your notebook: your instructor sees "
                        "the same message and will grade it again."),
    ("could not grade", "This is a problem on the grader's side, not in your notebook: your instructor sees "
                        "the same message and will grade it again."),
]


def advice(reason: str) -> str:
    """What a student can do about ``reason``."""
    for words, text in _ADVICE:
        if words in reason:
            return text
    return "Ask your instructor: they see the same message in the class's grades."


def notice_page(result: dict, notebook: str) -> str:
    """The HTML feedback page of a row that has no graded notebook."""
    from .sanitize import sanitize_page

    e = lambda text: html.escape(str(text), quote=True)  # noqa: E731
    reason = str(result.get("reason") or "no reason was recorded")
    score, max_score = float(result.get("score") or 0), float(result.get("max_score") or 0)
    items = "".join(f"<li>{e(part)}</li>" for part in reason.split("; ") if part)
    page = f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<title>{e(result.get('lesson'))}: feedback</title>
<style>body {{ font-family: system-ui, sans-serif; max-width: 48em; margin: 2em auto; padding: 0 1em; }}
.status {{ color: #a00; }}</style></head><body>
<h1>{e(result.get('lesson'))}: {e(notebook)}</h1>
<p class="status">Status: <b>{e(result.get('status'))}</b>, score {score:g} / {max_score:g}.</p>
<h2>What happened</h2><ul>{items}</ul>
<h2>What to do</h2><p>{e(advice(reason))}</p>
</body></html>"""
    return sanitize_page(page)
