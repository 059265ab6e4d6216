import sys

if not __package__:  # run as `python grader` or a path: the relative imports need -m
    print("run it as: python -m grader (from the kit's folder)", file=sys.stderr)
    sys.exit(2)

from .deps import GRADING, missing, missing_message

if missing(GRADING):  # before anything imports them: one line, not a traceback
    print(f"python -m grader: error: {missing_message(missing(GRADING))}", file=sys.stderr)
    sys.exit(2)

from .cli import main  # noqa: E402

sys.exit(main())
