"""Chapter-5 exercises: fill in each function, then run ``python -m grader EXERCISE``.

Generated from solutions/ by ``python -m grader make-exercises``; edit the stubs freely.
"""
