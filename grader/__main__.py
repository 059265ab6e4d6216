import sys

if not __package__:  # run as `python grader` or a path: the relative imports need -m
    print("run it as: python -m grader (from the kit's folder)", file=sys.stderr)
    sys.exit(2)

from .cli import main

sys.exit(main())
