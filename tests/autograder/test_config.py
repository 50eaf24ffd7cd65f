"""The course's nbgrader settings and limits: one definition, read the same way everywhere."""

from __future__ import annotations

import inspect
from dataclasses import fields

from traitlets.config import Config

from autograder import check, cli, grade
from autograder.config import Limits, nbgrader_config, write_config_file


def test_the_command_lines_defaults_are_the_limits_defaults():
    """Can `course grade`'s options drift from Limits (and so from grade() and check())?"""
    parser = cli._parser()
    args = parser.parse_args(["grade", "submitted", "--out", "out"])
    for name in ("cell_timeout", "notebook_timeout", "max_notebook_mb"):
        assert getattr(args, name) == getattr(Limits(), name), name
    for fn in (grade.grade, check.check, check.check_hidden):
        assert inspect.signature(fn).parameters["limits"].default == Limits(), fn.__name__
    assert inspect.signature(grade.grade).parameters["sandbox"].default is True


def test_limits_reach_the_nbgrader_settings(tmp_path):
    """Do the cell, notebook and output limits end up where nbgrader and BoundedExecute read them?"""
    limits = Limits(cell_timeout=7, notebook_timeout=70, max_output_chars=777, max_output_lines=77)
    c = nbgrader_config(tmp_path, limits)
    assert (c.Execute.timeout, c.BoundedExecute.notebook_timeout) == (7, 70)
    assert (c.BoundedExecute.max_output_chars, c.LimitOutput.max_lines) == (777, 77)
    assert c.Autograde.autograde_preprocessors[0] == "autograder.execute.BoundedExecute"
    assert c.GenerateFeedback.preprocessors[-1] == "autograder.preprocessors.VerdictFeedback"
    assert c.CourseDirectory.root == str(tmp_path)


def test_the_written_config_file_holds_the_same_settings(tmp_path):
    """Does an instructor running nbgrader's own commands get exactly the course's settings?"""
    limits = Limits(cell_timeout=9)
    path = write_config_file(tmp_path, limits)
    loaded = Config()
    exec(compile(path.read_text(encoding="utf-8"), str(path), "exec"), {"get_config": lambda: loaded})
    assert loaded == nbgrader_config(tmp_path, limits)


def test_every_limit_has_a_positive_default():
    """Is a limit ever left at 0 or None by a default (which would mean 'no bound')?"""
    for f in fields(Limits):
        if isinstance(f.default, bool):
            continue  # a switch (full_feedback), not a bound
        assert isinstance(f.default, int) and f.default > 0, f.name
