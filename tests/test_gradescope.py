"""The Gradescope bundle (``python -m grader gradescope``) and its ``run_autograder``, run
against a temporary folder laid out like Gradescope's /autograder (source, submission,
results). The full run grades a notebook of the solutions: ~10-20 s on 2 busy cores.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

from grader import EXERCISES
from grader.gradescope import NoSubmission, find_submission, run_autograder
from grader.checks import check_definitions
from grader.make_notebook import build_notebook

ROOT = Path(__file__).resolve().parent.parent
TOTAL = sum(c["points"] for e in EXERCISES for c in check_definitions()[e]["checks"])


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    path = tmp_path_factory.mktemp("bundle") / "autograder.zip"
    done = subprocess.run([sys.executable, "-m", "grader", "gradescope", "--output", str(path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return path


def test_bundle_has_gradescope_files_at_its_root_and_no_solutions(bundle):
    with zipfile.ZipFile(bundle) as zf:
        infos = {i.filename: i for i in zf.infolist()}
        setup = zf.read("setup.sh").decode()
    for script in ("setup.sh", "run_autograder"):
        assert stat.S_IMODE(infos[script].external_attr >> 16) == 0o755
    assert "requirements.txt" in infos
    assert not any(name.startswith(("solutions/", "exercises/", "tests/")) for name in infos)
    expected = ["grader/checks/calc_loss_batch/checks.toml", "grader/expected/fixtures.pt", *(f"grader/expected/{e}.pt" for e in EXERCISES),
                "reference/__init__.py", "data/the-verdict.txt", "data/gpt2/encoder.json", "data/gpt2/vocab.bpe"]
    assert all(name in infos for name in expected)
    assert "--index-url https://download.pytorch.org/whl/cpu" in setup and '"torch==' in setup
    assert "chmod -R go-rwx grader reference" in setup  # the grading processes' users must not read them


def test_existing_bundle_is_kept_unless_force(bundle):
    before = bundle.read_bytes()
    done = subprocess.run([sys.executable, "-m", "grader", "gradescope", "--output", str(bundle)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "--force" in done.stderr
    assert bundle.read_bytes() == before


def gradescope_layout(tmp_path: Path, bundle: Path) -> Path:
    """/autograder as Gradescope sets it up: source/ (the zip), run_autograder copied up, submission/."""
    root = tmp_path / "autograder"
    with zipfile.ZipFile(bundle) as zf:
        zf.extractall(root / "source")
    shutil.copy(root / "source" / "run_autograder", root / "run_autograder")
    (root / "run_autograder").chmod(0o755)
    (root / "submission").mkdir()
    return root


def test_run_autograder_grades_a_notebook_to_full_marks(tmp_path, bundle):
    root = gradescope_layout(tmp_path, bundle)
    nbformat.write(build_notebook(with_solutions=True), str(root / "submission" / "chapter5.ipynb"))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(AUTOGRADER_ROOT=str(root), AUTOGRADER_PYTHON=sys.executable)
    done = subprocess.run([str(root / "run_autograder")], cwd=root, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"--submission {root / 'submission' / 'chapter5.ipynb'}" in done.stdout
    results = json.loads((root / "results" / "results.json").read_text(encoding="utf-8"))
    assert results["score"] == TOTAL  # under instructor grading: the kit's answers hidden, a user of its own
    assert len(results["tests"]) == sum(len(check_definitions()[e]["checks"]) for e in EXERCISES)
    assert all(t["status"] == "passed" for t in results["tests"])
    for folder in ("grader", "reference"):  # run_autograder makes sure, setup.sh or not
        assert stat.S_IMODE((root / "source" / folder).stat().st_mode) & 0o077 == 0, folder


@pytest.mark.parametrize("layout, expected", [
    ({"exercises/calc_loss_batch.py": "", "README.md": ""}, ["--exercises-dir", "exercises"]),
    ({"calc_loss_batch.py": "", "notes.txt": ""}, ["--submission", "."]),
    ({"part1.py": "", "part2.py": ""}, ["--submission", "."]),  # each exercise from the file defining it
    ({"helpers.py": "", "work.ipynb": ""}, ["--submission", "work.ipynb"]),
    ({"work.ipynb": ""}, ["--submission", "work.ipynb"]),
    ({"chapter5.ipynb": "", "scratch.ipynb": ""}, ["--submission", "chapter5.ipynb"]),
    ({"answers.py": "", ".hidden.py": ""}, ["--submission", "answers.py"]),
    ({"my-folder/work.ipynb": ""}, ["--submission", "my-folder/work.ipynb"]),
])
def test_find_submission(tmp_path, layout, expected):
    for name, text in layout.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    flag, where = expected
    assert find_submission(tmp_path) == [flag, str(tmp_path if where == "." else tmp_path / where)]


@pytest.mark.parametrize("layout, says", [
    ({}, "is a folder with nothing to grade"),
    ({"a.ipynb": "", "b.ipynb": ""}, "several notebooks"),
])
def test_find_submission_refuses(tmp_path, layout, says):
    for name, text in layout.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(NoSubmission, match=says):
        find_submission(tmp_path)


@pytest.mark.parametrize("files, says", [
    ({}, "is a folder with nothing to grade"),
    ({"chapter5.ipynb": "not json"}, "is not a Jupyter notebook: it is not JSON"),
    ({"a.py": "x = 1\n", "b.py": "y = 2\n"}, "none of the .py files in submission defines an exercise function"),
])
def test_ungradable_submission_gets_a_zero_with_the_reason(tmp_path, files, says):
    submission = tmp_path / "submission"
    submission.mkdir()
    for name, text in files.items():
        (submission / name).write_text(text)
    results_file = tmp_path / "results" / "results.json"
    assert run_autograder(submission, results_file) == 0
    results = json.loads(results_file.read_text(encoding="utf-8"))
    assert results["score"] == 0 and results["tests"] == []
    assert (results["visibility"], results["stdout_visibility"]) == ("visible", "hidden")
    assert results["output"].startswith("The autograder could not grade this submission: ") and says in results["output"]


# --- GitHub Actions: the kit's own workflow and the GitHub Classroom template ------------------

def load_workflow(path: Path) -> dict:
    yaml = pytest.importorskip("yaml")
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def run_steps(workflow: dict) -> list[dict]:
    return [step for job in workflow["jobs"].values() for step in job["steps"]]


def test_torch_is_pinned_to_one_version_everywhere():
    """The bundle's setup.sh, the Classroom workflow, the kit's CI and README install the same torch."""
    from grader.deps import TORCH_VERSION

    for path in (".github/workflows/kit.yml", ".ci/run", "README.md"):
        text = (ROOT / path).read_text(encoding="utf-8")
        pins = set(re.findall(r"torch==([0-9][0-9.]*[0-9])", text))
        assert pins == {TORCH_VERSION}, (path, pins)
    with zipfile.ZipFile(build_bundle_for_test()) as zf:
        assert f'"torch=={TORCH_VERSION}"' in zf.read("setup.sh").decode()


def build_bundle_for_test() -> Path:
    import tempfile

    from grader.gradescope import build_bundle

    path = Path(tempfile.mkdtemp(prefix="bundle-")) / "autograder.zip"
    build_bundle(path)
    return path


def test_kit_workflow_runs_the_instructor_check_and_the_tests():
    workflow = load_workflow(ROOT / ".github" / "workflows" / "kit.yml")
    commands = "\n".join(step.get("run", "") for step in run_steps(workflow))
    assert "--index-url https://download.pytorch.org/whl/cpu" in commands
    assert "python -m grader --solutions\n" in commands + "\n"
    assert "python -m grader make-exercises --check" in commands and "python -m pytest" in commands


CLASSROOM = ROOT / "grader" / "templates" / "classroom.yml"


def test_classroom_template_keeps_the_reporters_rules():
    """GitHub Classroom's reporter only records points from a workflow named "Autograding Tests"
    with the one job "run-autograding-tests"; it reads runner R's results from env R_RESULTS."""
    workflow = load_workflow(CLASSROOM)
    assert workflow["name"] == "Autograding Tests" and list(workflow["jobs"]) == ["run-autograding-tests"]
    steps = run_steps(workflow)
    reporter = next(s for s in steps if s.get("uses", "").startswith("classroom-resources/autograding-grading-reporter@"))
    step_ids = {s["id"] for s in steps if "id" in s}
    for runner in reporter["with"]["runners"].split(","):
        value = reporter["env"][f"{runner.strip().upper()}_RESULTS"]
        assert value.replace(" ", "") == "${{steps.%s.outputs.result}}" % runner.strip() and runner.strip() in step_ids


def test_visibility_is_set_explicitly_and_chosen_when_the_bundle_is_built(tmp_path):
    """results.json always says when students see the tests and the log (Gradescope's
    visibility/stdout_visibility); `gradescope --visibility after_published` bakes it in."""
    from grader.gradescope import build_bundle

    bundle = tmp_path / "exam.zip"
    build_bundle(bundle, visibility="after_published", stdout_visibility="hidden")
    with zipfile.ZipFile(bundle) as zf:
        script = zf.read("run_autograder").decode()
    assert "--visibility after_published --stdout-visibility hidden" in script
    results_file = tmp_path / "results.json"
    (tmp_path / "submission").mkdir()
    run_autograder(tmp_path / "submission", results_file, visibility="after_published")
    results = json.loads(results_file.read_text(encoding="utf-8"))
    assert (results["visibility"], results["stdout_visibility"]) == ("after_published", "hidden")
