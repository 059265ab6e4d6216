"""A class's submissions as an LMS export lays them out, for ``grader batch``.

An export is a folder (or its .zip) of entries. Canvas, Moodle and Blackboard name each
file after the student, so one student's files are several entries:

    Canvas       doejane_123456_7890123_chapter5.ipynb      (name_[LATE_]userid_submissionid_file)
    Moodle       Jane Doe_4567_assignsubmission_file_work.py (name_participantid_assignsubmission_..._file;
                 also a folder of that name)
    Blackboard   Chapter 5_jdoe_attempt_2026-03-01-10-00-00_work.py (assignment_user_attempt_time_file)

``find_submissions`` groups the entries of one student's attempt into one submission
(a folder of their files, under their own names) and takes the student id from the
name; anything else is one submission per entry, without an id. A roster CSV
(``--roster``: columns ``submission,student_id``) sets or overrides the id of any
submission by its name in the gradebook. Submissions that share a student id are
flagged as duplicates. These patterns are the exports' documented-by-example names;
check one of your own exports against them (or use a roster).
"""

from __future__ import annotations

import csv
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from .errors import SourceError, UsageError
from .folders import HIDDEN, unpack_zip

PATTERNS = (  # (LMS, regex with groups name, id, attempt, file)
    ("canvas", re.compile(r"^(?P<name>[^_]+)_(?:late_)?(?P<id>\d+)_(?P<attempt>\d+)_(?P<file>.+)$", re.I)),
    ("moodle", re.compile(r"^(?P<name>.+?)_(?P<id>\d+)_assignsubmission_[a-z]+_(?P<attempt>)(?P<file>.*)$")),
    ("blackboard", re.compile(r"^(?P<name>.+)_(?P<id>[^_]+)_attempt_(?P<attempt>\d{4}(?:-\d\d){5})(?:_(?P<file>.+))?$")),
)


@dataclass
class Submission:
    name: str  # the gradebook's row label: the entry's name, or the common prefix of a student's files
    path: Path  # a file, a folder, or a .zip
    student_id: str = ""
    duplicates: list = field(default_factory=list)  # names of other submissions with the same student id
    source: object = None  # sources.ExercisesDir, SubmissionFile, NotebookFile or folders.FilesByDefinition
    error: str = ""  # why it cannot be graded at all (one line)
    report: object = None  # grading.Report, once graded


@dataclass(frozen=True)
class LmsName:
    lms: str
    student_id: str
    attempt: str
    file: str  # the student's own file name ("" for a Moodle folder)
    prefix: str  # what the entries of one attempt share


def parse_lms_name(name: str) -> LmsName | None:
    for lms, pattern in PATTERNS:
        match = pattern.match(name)
        if match:
            file = match.group("file") or ""
            prefix = name[: len(name) - len(file)].rstrip("_") if file else name.rstrip("_")
            return LmsName(lms, match.group("id"), match.group("attempt") or "", file, prefix)
    return None


def find_submissions(folder: Path, workdir: Path) -> list[Submission]:
    """The submissions in ``folder`` (see the module docstring), sorted by name. Files of one
    student's attempt are copied into ``workdir/<prefix>/`` under their own names, and .zip
    entries unpacked there, so that each submission is one path."""
    groups: dict[tuple, list[tuple[Path, LmsName | None]]] = {}
    for path in sorted(p for p in folder.iterdir() if not p.name.startswith(HIDDEN)):
        parsed = parse_lms_name(path.name)
        key = (parsed.lms, parsed.student_id, parsed.attempt, parsed.prefix) if parsed else ("", path.name)
        groups.setdefault(key, []).append((path, parsed))
    submissions = []
    for key, entries in groups.items():
        parsed = entries[0][1]
        name = parsed.prefix if parsed else entries[0][0].name
        sub = Submission(name, entries[0][0], student_id=parsed.student_id if parsed else "")
        try:
            sub.path = materialize(entries, workdir / f"{len(submissions):04d}")
        except SourceError as exc:
            sub.error = str(exc)
        submissions.append(sub)
    return sorted(submissions, key=lambda s: s.name)


def materialize(entries, dest: Path) -> Path:
    """One path for a submission's entries: the entry itself, a zip unpacked, or a folder of
    several files under the names the student gave them. Raises SourceError for a bad zip."""
    if len(entries) == 1:
        path, parsed = entries[0]
        if path.suffix.lower() == ".zip" and path.is_file():
            return unpack_zip(path, dest)
        return path
    dest.mkdir(parents=True)
    for path, parsed in entries:
        own = parsed.file if parsed and parsed.file else path.name
        if path.suffix.lower() == ".zip" and path.is_file():
            unpack_zip(path, dest / Path(own).stem)
        elif path.is_dir():
            shutil.copytree(path, dest / own, ignore=shutil.ignore_patterns(".*", "__MACOSX"))
        else:
            shutil.copyfile(path, dest / own)
    return dest


def read_roster(path: Path) -> dict[str, str]:
    """``submission`` -> ``student_id`` from a roster CSV. Raises UsageError (one line)."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            missing = {"submission", "student_id"} - set(reader.fieldnames or ())
            if missing:
                raise UsageError(f"--roster {path}: needs the columns submission and student_id "
                                 f"(missing: {', '.join(sorted(missing))})")
            roster = {}
            for row in reader:
                name = (row["submission"] or "").strip()
                if name in roster:
                    raise UsageError(f"--roster {path}: submission {name!r} is listed twice")
                if name:
                    roster[name] = (row["student_id"] or "").strip()
    except OSError as exc:
        raise UsageError(f"--roster {path}: {exc.strerror}") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise UsageError(f"--roster {path} is not a UTF-8 CSV file ({exc.__class__.__name__})") from None
    return roster


def apply_roster(submissions, roster: dict[str, str]) -> list[str]:
    """Set the student ids the roster gives; returns the roster's names that matched no submission."""
    names = {s.name for s in submissions}
    for sub in submissions:
        if sub.name in roster:
            sub.student_id = roster[sub.name]
    return sorted(set(roster) - names)


def flag_duplicates(submissions) -> None:
    """Submissions that share a (non-empty) student id name each other in ``duplicates``."""
    by_id: dict[str, list[Submission]] = {}
    for sub in submissions:
        if sub.student_id:
            by_id.setdefault(sub.student_id, []).append(sub)
    for subs in by_id.values():
        for sub in subs:
            sub.duplicates = [other.name for other in subs if other is not sub]
