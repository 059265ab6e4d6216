"""Completed chapter-5 exercises. ``exercises/`` is generated from these files by
``python -m grader make-exercises``: the code between ``# BEGIN SOLUTION`` and
``# END SOLUTION`` becomes ``raise NotImplementedError``."""
