"""The CSV gradebook of ``grader batch``: one row per submission, in a shape an LMS or
pandas takes as it is.

Columns: ``submission`` (the entry's name, or the common prefix of one student's files),
``student_id`` (from the LMS export's file names or the roster; empty when unknown), one
column of points per exercise, ``total``, ``error`` and ``notes``. The first row after the
header is ``Points Possible`` (Canvas's name for it): the maximum of each column.

- Every points cell is a number in every row: a submission that could not be graded
  scores 0 and its ``error`` says why.
- ``error``: why nothing of the submission could be graded, whatever the kind (not UTF-8,
  a syntax error in a single file, an import that is not installed, an import that hangs
  or crashes, an unsupported file): one line, the same column for all of them.
- ``notes``: what else an instructor should know: exercises not graded normally (not
  implemented, could not be loaded, stopped, crashed) and duplicate submissions of one student.
"""

from __future__ import annotations

import csv
import os
from collections import defaultdict
from pathlib import Path

POINTS_POSSIBLE = "Points Possible"
# Exercise statuses in which nothing of it ran (grading.ExerciseResult.status).
NOT_RUN = ("load_error", "timeout", "memory", "crashed")


def fields(exercises) -> list[str]:
    return ["submission", "student_id", *exercises, "total", "error", "notes"]


def whole_submission_error(report) -> str:
    """The one cause that stopped every exercise of a report (a syntax error in a single file,
    an import that hangs), or "" when the exercises were graded, or stopped for several causes."""
    if not report.exercises or any(ex.status not in NOT_RUN for ex in report.exercises):
        return ""
    messages = {ex.message for ex in report.exercises}
    return messages.pop() if len(messages) == 1 else ""


def max_points(exercises) -> dict:
    from .checks import check_definitions

    points = {e: sum(c["points"] for c in check_definitions()[e]["checks"]) for e in exercises}
    return {"submission": POINTS_POSSIBLE, **{e: f"{p:g}" for e, p in points.items()},
            "total": f"{sum(points.values()):g}", "student_id": "", "error": "", "notes": ""}


def row(sub, exercises) -> dict:
    """The gradebook row of one lms.Submission."""
    out = {"submission": sub.name, "student_id": sub.student_id, "error": sub.error, "notes": "",
           **{e: "0" for e in exercises}, "total": "0"}
    notes = []
    if sub.report is not None:
        notes += list(getattr(sub.report, "notes", ()))  # said once about the source (a notebook's bad cells)
        for ex in sub.report.exercises:
            out[ex.name] = f"{ex.score:g}"
        out["total"] = f"{sub.report.score:g}"
        out["error"] = whole_submission_error(sub.report)
        if not out["error"]:
            notes.append(exercise_notes(sub.report))
    if sub.duplicates:
        notes.append(f"duplicate: student {sub.student_id} also submitted {', '.join(sub.duplicates)}")
    out["notes"] = "; ".join(n for n in notes if n)
    return out


def exercise_notes(report) -> str:
    """``calc_loss_batch, evaluate_model: not implemented yet; plot_losses: crashed ...``."""
    notes = defaultdict(list)  # what happened -> exercises it happened to
    for ex in report.exercises:
        if ex.status != "graded":
            detail = ex.status_line if ex.status == "not_implemented" else (ex.message or ex.status_line)
            notes[detail].append(ex.name)
    return "; ".join(f"{', '.join(names)}: {detail}" for detail, names in notes.items())


def write(path: Path, submissions, exercises) -> None:
    """Write the CSV (UTF-8) atomically: a crash never leaves half a gradebook."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=fields(exercises))
        writer.writeheader()
        writer.writerow(max_points(exercises))
        for sub in submissions:
            writer.writerow(row(sub, exercises))
    os.replace(tmp, path)
