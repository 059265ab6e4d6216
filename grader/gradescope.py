"""Gradescope: build the autograder bundle, and grade a submission inside it.

``python -m grader gradescope --output autograder.zip`` writes a zip with, at its
root, Gradescope's two files and the kit's grading parts:

- ``setup.sh``: run once when Gradescope builds the image: makes a virtual
  environment in /autograder/venv with the CPU build of torch and requirements.txt
  (the versions this bundle was built and tested with);
- ``run_autograder``: run for each submission: grades /autograder/submission and
  writes /autograder/results/results.json (``python -m grader.gradescope``), under
  instructor grading (``--fresh-seeds``: grader/lockdown.py, grader/answers.py); both
  scripts make the kit's grader/ and reference/ unreadable to other users, since
  the student's code runs as one where the container allows no mount namespace;
- ``requirements.txt``, ``grader/`` (with its checks and the frozen expected
  values), ``reference/`` and ``data/``. No solutions/.

``run_autograder`` reads ``AUTOGRADER_ROOT`` (default /autograder) and
``AUTOGRADER_PYTHON`` (default the venv's python, else python3), so it can be tried
on a folder laid out like Gradescope's.

What is graded in the submission folder, first match wins (grader/folders.py): an
``exercises/`` folder; .py files named like the exercises (``calc_loss_batch.py``...) or
several .py files, each exercise from the file that defines it; one notebook
(``chapter5.ipynb`` if there are several); one ``.py`` file. A folder holding a
single folder (a zipped folder) is looked into. When nothing can be graded, the
results.json says why, with a score of 0.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import stat
import sys
import zipfile
from importlib import metadata
from pathlib import Path

from .deps import GRADING, TORCH_INDEX, TORCH_VERSION
from .report import GRADESCOPE_STDOUT_VISIBILITY, GRADESCOPE_VISIBILITY

KIT_ROOT = Path(__file__).resolve().parent.parent
BUNDLE_DIRS = ("grader", "reference", "data")
# Distributions the grader imports (besides torch, installed from TORCH_INDEX), pinned to
# the versions installed where the bundle is built.
REQUIREMENTS = tuple(dist for dist in GRADING.values() if dist != "torch")

SETUP_SH = """#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image.
# Meant for Gradescope's Ubuntu 24.04 base image (its python3 is 3.12; the grader needs
# >= 3.11, so not 22.04's 3.10), with the default container: 0.5 vCPU (the grader then runs
# one grading process at a time) and the memory setting of the kit's guide (docs).
set -euo pipefail
cd "$(dirname "$0")"
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends python3 python3-venv python3-pip
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {{
    echo "setup.sh: the grader needs Python >= 3.11; this image has $(python3 --version)" >&2; exit 1; }}
python3 -m venv /autograder/venv
/autograder/venv/bin/pip install --no-cache-dir --upgrade pip
# The CPU build of torch (no CUDA libraries to download), the version the kit was measured with.
/autograder/venv/bin/pip install --no-cache-dir --index-url {torch_index} "torch=={torch}" || {{
    echo "setup.sh: torch {torch} has no CPU wheel for $(python3 --version) here: choose the Ubuntu 24.04 image" >&2
    exit 1; }}
/autograder/venv/bin/pip install --no-cache-dir -r requirements.txt
# Fails the image build now, not every submission later, when the kit does not load.
/autograder/venv/bin/python -c "import grader.cli, reference; reference.verify_all_data()"
# The grader (root) runs student code as users of its own: they must not read the kit's answers.
chmod -R go-rwx grader reference
"""

RUN_AUTOGRADER = """#!/usr/bin/env bash
# Gradescope runs this for each submission: it grades $AUTOGRADER_ROOT/submission and writes
# $AUTOGRADER_ROOT/results/results.json (AUTOGRADER_ROOT defaults to /autograder).
# AUTOGRADER_PYTHON picks the interpreter (default: the venv setup.sh made, else python3).
set -u
ROOT="${AUTOGRADER_ROOT:-/autograder}"
PYTHON="${AUTOGRADER_PYTHON:-}"
if [ -z "$PYTHON" ]; then
    if [ -x "$ROOT/venv/bin/python" ]; then PYTHON="$ROOT/venv/bin/python"; else PYTHON=python3; fi
fi
cd "$(dirname "$(readlink -f "$0")")"
[ -d grader ] || cd "$ROOT/source"
# Student code runs as users of its own (when this runs as root): the kit's answers are not theirs to read.
chmod -R go-rwx grader reference 2>/dev/null || true
exec "$PYTHON" -m grader.gradescope --submission-dir "$ROOT/submission" --results "$ROOT/results/results.json" \\
    @VISIBILITY@
"""
VISIBILITIES = ("visible", "hidden", "after_due_date", "after_published")  # Gradescope's own values


class NoSubmission(Exception):
    """Nothing gradable in the submission folder; the message says what to upload."""


def requirements_text() -> str:
    lines = [f"# The grader's dependencies besides torch (setup.sh installs torch from {TORCH_INDEX})."]
    for name in REQUIREMENTS:
        try:
            lines.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            lines.append(name)
    return "\n".join(lines) + "\n"


def bundle_files(kit_root: Path = KIT_ROOT):
    """(name in the zip, path) of the kit files a bundle carries, sorted."""
    for folder in BUNDLE_DIRS:
        for path in sorted((kit_root / folder).rglob("*")):
            rel = path.relative_to(kit_root)
            if path.is_file() and "__pycache__" not in rel.parts and path.suffix != ".pyc" \
                    and not path.name.endswith(".tmp"):
                yield rel.as_posix(), path


def run_autograder_script(visibility: str = GRADESCOPE_VISIBILITY,
                          stdout_visibility: str = GRADESCOPE_STDOUT_VISIBILITY) -> str:
    return RUN_AUTOGRADER.replace(
        "@VISIBILITY@", f"--visibility {visibility} --stdout-visibility {stdout_visibility}")


def build_bundle(output: Path, force: bool = False, visibility: str = GRADESCOPE_VISIBILITY,
                 stdout_visibility: str = GRADESCOPE_STDOUT_VISIBILITY) -> list[str]:
    """Write the Gradescope bundle to ``output``; returns the names in it. ``visibility`` and
    ``stdout_visibility`` go into every results.json (Gradescope's values, VISIBILITIES).

    Raises:
        FileExistsError: ``output`` exists and ``force`` is false.
    """
    output = Path(output)
    if output.exists() and not force:
        raise FileExistsError(f"{output} exists: --force replaces it")
    names = []
    tmp = output.with_name(output.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, text in (("setup.sh", SETUP_SH.format(torch_index=TORCH_INDEX, torch=TORCH_VERSION)),
                           ("run_autograder", run_autograder_script(visibility, stdout_visibility)),
                           ("requirements.txt", requirements_text())):
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            mode = 0o755 if name != "requirements.txt" else 0o644
            info.external_attr = (stat.S_IFREG | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, text)
            names.append(name)
        for name, path in bundle_files():
            zf.write(path, name)
            names.append(name)
    tmp.replace(output)
    return names


def gradescope_command(argv) -> int:
    from .options import verify_kit_data
    from .errors import UsageError

    p = argparse.ArgumentParser(
        prog="python -m grader gradescope",
        description="Build a Gradescope autograder bundle (setup.sh, run_autograder, the grader, "
                    "the reference and its data; no solutions). Upload it as a programming "
                    "assignment's autograder, with the Ubuntu 24.04 base image.")
    p.add_argument("--output", type=Path, required=True, metavar="FILE.zip", help="where to write the zip")
    p.add_argument("--force", action="store_true", help="replace an existing file")
    p.add_argument("--visibility", choices=VISIBILITIES, default=GRADESCOPE_VISIBILITY,
                   help="when students see the tests and their score (default visible: at once, for "
                        "practice; after_published for an exam)")
    p.add_argument("--stdout-visibility", choices=VISIBILITIES, default=GRADESCOPE_STDOUT_VISIBILITY,
                   help="when students see run_autograder's log (default hidden: it is for you; the tests' "
                        "output already says what they need)")
    args = p.parse_args(argv)
    if args.output.suffix != ".zip":
        raise UsageError(f"--output {args.output}: name a .zip file")
    if args.output.is_dir():
        raise UsageError(f"--output {args.output} is a folder: name a .zip file")
    if not args.output.parent.is_dir():
        raise UsageError(f"--output {args.output}: folder {args.output.parent} does not exist")
    verify_kit_data()  # a bundle without its data or expected values would fail every submission
    try:
        names = build_bundle(args.output, force=args.force, visibility=args.visibility,
                             stdout_visibility=args.stdout_visibility)
    except FileExistsError as exc:
        raise UsageError(str(exc)) from None
    print(f"wrote {args.output} ({len(names)} files, {args.output.stat().st_size / 2**20:.1f} MiB)")
    return 0


# ---------------------------------------------------------------------------
# Inside Gradescope: run_autograder
# ---------------------------------------------------------------------------

def find_submission(folder: Path) -> list[str]:
    """The grader's source arguments for what a student uploaded to ``folder`` (the rules of
    folders.what_to_grade, as ``grader batch`` applies them). Raises NoSubmission."""
    from .errors import SourceError
    from .folders import what_to_grade

    folder = Path(folder)
    if not folder.is_dir():
        raise NoSubmission(f"the submission folder {folder} does not exist")
    try:
        kind, what = what_to_grade(folder)
    except SourceError as exc:
        raise NoSubmission(str(exc)) from None
    if kind == "exercises":
        return ["--exercises-dir", str(what)]
    if kind == "files":  # each exercise from the .py file that defines it
        return ["--submission", str(what[0].parent)]
    return ["--submission", str(what)]


def error_results(message: str) -> dict:
    """results.json for a submission that could not be graded: 0 points and the reason."""
    return {"score": 0, "output": f"The autograder could not grade this submission: {message}", "tests": []}


def write_results(results_file: Path, results: dict, visibility: str, stdout_visibility: str) -> None:
    results = {**results, "visibility": visibility, "stdout_visibility": stdout_visibility}
    results_file.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def run_autograder(submission_dir: Path, results_file: Path, extra_args=(), visibility: str = GRADESCOPE_VISIBILITY,
                   stdout_visibility: str = GRADESCOPE_STDOUT_VISIBILITY) -> int:
    """Grade ``submission_dir`` and write Gradescope's ``results_file``; returns 0 when written."""
    from .cli import main as grader_main

    results_file = Path(results_file)
    results_file.parent.mkdir(parents=True, exist_ok=True)
    try:
        source_args = find_submission(submission_dir)
    except NoSubmission as exc:
        write_results(results_file, error_results(str(exc)), visibility, stdout_visibility)
        print(f"run_autograder: {exc}")
        return 0
    print("run_autograder: python -m grader " + " ".join(source_args), flush=True)
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):  # instructor grading (--fresh-seeds): these grades count
        code = grader_main([*source_args, *extra_args, "--fresh-seeds", "--format", "json",
                            "--output", str(results_file)])
    sys.stderr.write(stderr.getvalue())
    if code == 2 or not results_file.is_file():  # a usage error: a broken notebook, a missing module...
        lines = [line.removeprefix("python -m grader: error: ") for line in stderr.getvalue().splitlines()]
        message = next((line for line in reversed(lines) if line.strip()), f"the grader exited with status {code}")
        results = error_results(message)
    else:
        results = json.loads(results_file.read_text(encoding="utf-8"))
    write_results(results_file, results, visibility, stdout_visibility)
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m grader.gradescope",
                                description="Gradescope's run_autograder: grade a submission folder.")
    p.add_argument("--submission-dir", type=Path, default=Path("/autograder/submission"))
    p.add_argument("--results", type=Path, default=Path("/autograder/results/results.json"))
    p.add_argument("--visibility", choices=VISIBILITIES, default=GRADESCOPE_VISIBILITY)
    p.add_argument("--stdout-visibility", choices=VISIBILITIES, default=GRADESCOPE_STDOUT_VISIBILITY)
    args, extra = p.parse_known_args(argv)
    os.environ.setdefault("MPLBACKEND", "Agg")
    return run_autograder(args.submission_dir, args.results, extra, args.visibility, args.stdout_visibility)


if __name__ == "__main__":
    sys.exit(main())
