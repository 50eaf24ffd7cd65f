"""``python -P -m course_lib.judge``: start a grading kernel (see :mod:`course_lib.judge.start`)."""

from .start import main

main()
