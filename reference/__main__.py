import sys

if not __package__:  # run as `python reference` or a path: the relative imports need -m
    print("run it as: python -m reference (from the kit's folder)", file=sys.stderr)
    sys.exit(2)

from .run import main

sys.exit(main())
