"""Trusted code that runs inside a grading kernel — the grader's, not the lessons'.

Nothing here is imported by a lesson. The grader starts every judge kernel
as ``python -P -m course_lib.judge``; its start-up runs before any cell and
leaves in the kernel what decides or guards a verdict:

    start      the start-up, in order: channel, relay, sealing, seccomp, audit hook, ipykernel, runner
    channel    the private channel to the grader: its first message, signed lines out, requests in
    runner     runs each test itself (never as an IPython cell) and calls functions for the grader
    wire       values as data between kernel and grader (exact types; anything else is opaque)
    integrity  sealed modules, who is writing (course, cell or library), the protected snapshot
    ownership  a method's self is its own class's instance, for classes made in cells
    public     which attribute names a solution may read: the policy's rule, and the checked getattr cells get
    audit      the PEP 578 audit hook: class changes from cells refused, interpreter access reported
    streams    sys.stdout/sys.stderr for cells: writes reach the notebook, no attribute leads to the kernel
    seccomp    the filter that refuses new processes in lessons whose exercises start none
    relay      the byte relay between the grader and the sandbox's loopback (its own process)
    walk       the reachability walk that proves what a solution's allowed names can reach

The grader's ends are in ``autograder``: ``audit`` (the channel and the
kernel manager), ``referee`` (tests run or judged), ``peer`` (checks a peer
judges), ``policy`` (what a solution cell may contain).
"""

__all__: list[str] = []  # the modules are the interface
