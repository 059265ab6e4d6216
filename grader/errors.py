"""The grader's error types, at the bottom of its import graph: every module may raise them,
and the commands above (cli, batch, watch, notebook, gradescope, release) turn them into
one-line messages. Nothing here imports anything of the grader's.
"""


class UsageError(Exception):
    """A command-line mistake or an input the command cannot take; printed as one line, exit 2."""


class SourceError(Exception):
    """A submission the grader cannot take at all (exit 2); the message is one line."""


class NotebookError(ValueError):
    """A file that is not a usable notebook; the message is one line."""


class LoadError(Exception):
    """The student's file could not be imported; the message says why (grading child)."""


class NotImplementedYet(Exception):
    """The exercise is missing or still raises NotImplementedError (grading child).

    ``summary`` is the report table's few words for it: "not implemented yet" for an
    untouched stub; the message says more when it is something else (a misnamed function,
    the stub's raise left in below the student's code).
    """

    def __init__(self, message: str, summary: str = "not implemented yet"):
        super().__init__(message)
        self.summary = summary


class DependencyError(RuntimeError):
    """An exercise the graded one uses is not implemented or could not be loaded (student release)."""


class KitAnswerHidden(RuntimeError):
    """Student code called the kit's own answer to the exercise being graded (instructor grading)."""
