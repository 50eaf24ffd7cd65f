"""The course's grading pipeline: release, grade, check, feedback — over nbgrader.

One module a pipeline step (like nbgrader's own ``apps/`` and
``preprocessors/``):

    lessons        where the source notebooks are and what they are called
    config         the nbgrader settings every step uses
    release        the student version (nbgrader generate_assignment)
    discover       what is under SUBMISSIONS, read as data, and fingerprints
    normalize      the notebook that is graded: lesson cells + solution cells
    policy         what a solution cell may contain (ast), checked before running
    audit          the grader's end of the judge kernel's audit channel
    peer           the grader's end of the checks a peer judges (servers, clients)
    execute        runs a notebook so that no cell can stop the rest
    sandbox        bubblewrap around every judge kernel
    bwrap          the bwrap command line and what it mounts (a pure function)
    cgroups        the pids and memory cgroups that bound a sandbox as a whole
    preprocessors  feedback that carries verdicts, not execution
    exporter       the feedback page's HTML export (nbconvert's, minus a slow pass)
    sanitize       feedback and report pages with nothing live in them
    leaks          does a text quote hidden test code, plainly or disguised?
    worker         grades one submission in a throw-away course directory
    pool           long-lived worker processes, each job bounded
    cluster        the same workers on a Dask cluster (``course grade --cluster``)
    results        one Result type and its atomic writes
    late           due dates, submission times and late penalties
    notices        a feedback page for a row nbgrader wrote none for
    grade          grades a class: the batch's only writer
    report         the class report (report.html)
    check          ``course check`` for a student
    collect        a learning platform's ZIP into submitted/
    unzip          safe ZIP extraction (sizes, names, links, bombs)
    solutions      ``course solutions``: the lessons with their solutions, for self-study
    gradebook      results into nbgrader's gradebook
    proctree       kill a process tree (one copy for all)
    slowimports    what a course process need not import (jsonschema's format checkers, heavy __init__s)
    hub/           a JupyterHub class: provision, configs, processes, classhub, __main__
    cli            the thin ``course`` command
"""

__all__: list[str] = []  # the modules are the interface: import autograder.<module>
