"""The course's grading pipeline: release, grade, check, feedback — over nbgrader.

One module a pipeline step (like nbgrader's own ``apps/`` and
``preprocessors/``): ``lessons`` finds the source notebooks, ``config``
holds the nbgrader settings, ``release`` makes the student version,
``execute`` runs a notebook so that no cell can stop the rest,
``feedback`` keeps hidden tests hidden, ``worker`` grades one submission in
a throw-away course directory, ``grade`` grades a class, ``check`` runs the
visible tests for a student, and ``cli`` is the thin ``course`` command.
"""
