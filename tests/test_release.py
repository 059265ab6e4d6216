"""``python -m grader release``: the kit as students get it.

One release is built per module (~1 s). The leak check below is written
independently of grader/release.py's own check, so a bug there cannot hide a leak.
"""

from __future__ import annotations

import ast
import keyword
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from grader import EXERCISES
from grader.checks import check_definitions
from grader.generate import generated_files

ROOT = Path(__file__).resolve().parent.parent
GIVEN = {"generate_and_print_sample"}  # book code that is not an exercise: it ships (see release.py)


def run_grader(*args, cwd, timeout=300):
    return subprocess.run([sys.executable, "-m", "grader", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    out = tmp_path_factory.mktemp("release") / "chapter5"
    proc = run_grader("release", "--output", str(out), cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return out


def code_lines(text: str) -> set[str]:
    """Stripped lines without trailing comments that name at least two things: a line like
    ``else:``, ``)`` or ``return loss`` gives no solution away (and is everywhere)."""
    out = set()
    for line in text.splitlines():
        code = re.sub(r"\s+#.*$", "", line).strip()
        names = [t for t in re.findall(r"[A-Za-z_]\w*", code) if not keyword.iskeyword(t)]
        if code and not code.startswith("#") and len(names) >= 2:
            out.add(code)
    return out


def secret_lines() -> set[str]:
    lines = set()
    for exercise in EXERCISES:
        text = (ROOT / "solutions" / f"{exercise}.py").read_text(encoding="utf-8")
        for region in re.findall(r"# BEGIN SOLUTION\n(.*?)# END SOLUTION", text, re.S):
            lines |= code_lines(region)
    text = (ROOT / "reference" / "pretraining.py").read_text(encoding="utf-8")
    for node in ast.parse(text).body:
        if isinstance(node, ast.FunctionDef) and node.name not in GIVEN:
            body = node.body[1:] if ast.get_docstring(node) else node.body
            lines |= code_lines("\n".join(ast.get_source_segment(text, s) for s in body))
    return lines


def texts_by_design() -> list[str]:
    """What students get anyway: the earlier chapters, the stubs the kit's make-exercises
    writes (signatures, docstrings, TODOs), the given code, the hints of checks.toml, and
    the scenarios (grader code that trains small models shares ordinary lines such as
    ``loss.backward()`` with the solutions; what must never ship is solution or chapter-5
    reference files)."""
    texts = [(ROOT / "reference" / m).read_text(encoding="utf-8") for m in ("data.py", "model.py")]
    texts += list(generated_files().values())
    text = (ROOT / "reference" / "pretraining.py").read_text(encoding="utf-8")
    texts += [ast.get_source_segment(text, node) for node in ast.parse(text).body
              if isinstance(node, ast.FunctionDef) and node.name in GIVEN]
    texts += [(ROOT / "grader" / "checks" / e / part).read_text(encoding="utf-8")
              for e in EXERCISES for part in ("checks.toml", "scenarios.py")]
    return texts


def shipped_by_design() -> set[str]:
    return set().union(*(code_lines(text) for text in texts_by_design()))


def test_secret_lines_are_many():
    """The check below is worth something only if there is a lot to look for."""
    assert len(secret_lines() - shipped_by_design()) >= 50  # 60 when measured


def test_release_layout(release):
    files = {p.relative_to(release).as_posix() for p in release.rglob("*") if p.is_file()}
    assert {f"exercises/{e}.py" for e in EXERCISES} <= files
    assert {f"grader/expected/{e}.pt" for e in EXERCISES} | {"grader/expected/fixtures.pt"} <= files
    assert {"grader/RELEASE", "reference/data.py", "reference/model.py",
            "data/the-verdict.txt", "data/SHA256SUMS", "README.md", "pyproject.toml"} <= files
    assert {f"grader/checks/{e}/{part}" for e in EXERCISES for part in ("checks.toml", "scenarios.py")} <= files
    assert not any(f.startswith(("solutions/", "tests/")) for f in files)
    assert not any(f.endswith("/mistakes.py") for f in files)  # the error model stays with the instructor
    for gone in ("reference/pretraining.py", "reference/__main__.py",
                 "grader/expected.py", "grader/generate.py", "grader/release.py"):
        assert gone not in files
    umask = os.umask(0)
    os.umask(umask)
    # as a folder made here is (0755 under umask 022): not mkdtemp's 0700, which other users cannot enter
    assert release.stat().st_mode & 0o777 == 0o777 & ~umask


def test_expected_values_are_the_kits_byte_for_byte(release):
    from grader.context import REPLAY_FILE

    for path in (ROOT / "grader" / "expected").glob("*.pt"):
        assert (release / "grader" / "expected" / path.name).read_bytes() == path.read_bytes()
    # the 124M model's replay (4 MB) too: practice in the release replays it, the real model behind it
    assert (release / "grader" / "expected" / REPLAY_FILE).is_file()


def test_no_solution_code_in_the_release(release):
    secret = secret_lines() - shipped_by_design()
    by_design = texts_by_design()
    long_secret = {s for s in secret if len(s) >= 30 and not any(s in text for text in by_design)}
    leaks = {}
    for path in release.rglob("*"):
        if not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # the frozen tensors
        hits = secret & code_lines(text)
        hits |= {s for s in long_secret if s in text}  # also inside longer lines and strings
        if hits:
            leaks[path.relative_to(release).as_posix()] = sorted(hits)
    assert leaks == {}


def test_release_stubs_import_the_students_own_exercises(release):
    for exercise in EXERCISES:
        text = (release / "exercises" / f"{exercise}.py").read_text(encoding="utf-8")
        tree = ast.parse(text)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "reference":
                assert not {a.name for a in node.names} & set(EXERCISES), exercise
    text = (release / "exercises" / "calc_loss_loader.py").read_text(encoding="utf-8")
    assert "from exercises.calc_loss_batch import calc_loss_batch" in text


def test_stubs_score_zero_in_the_release(release):
    proc = run_grader("--format", "json", "text_to_token_ids", cwd=release, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert '"score": 0' in proc.stdout


def test_solutions_get_full_marks_with_the_release_grader(release, tmp_path):
    """The solutions, as a student would have them in the release (their imports of other
    exercises are the release's: ``from exercises.X import X``), graded by the release's
    own ``python -m grader``, with every other exercise bound to the student's own."""
    from grader.release import release_exercises

    work = tmp_path / "work"
    work.mkdir()
    for name, text in release_exercises(ROOT / "solutions", keep_solution=True).items():
        (work / name).write_text(text, encoding="utf-8")
    proc = run_grader("--exercises-dir", str(work), cwd=release)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    total = sum(c["points"] for e in EXERCISES for c in check_definitions()[e]["checks"])
    assert re.search(rf"Total\s+{total}/{total}", proc.stdout), proc.stdout


def test_instructor_grading_in_the_release_binds_the_students_own_functions(release, tmp_path):
    """--fresh-seeds in the release: the grading processes read the student's sibling files
    (calc_loss_loader runs on their calc_loss_batch) and the given code (train_model_simple) as
    they did before entering the sandbox (as root: a user of its own, the kit covered)."""
    from grader.release import release_exercises

    work = tmp_path / "work"
    work.mkdir()
    for name, text in release_exercises(ROOT / "solutions", keep_solution=True).items():
        (work / name).write_text(text, encoding="utf-8")
    proc = run_grader("--fresh-seeds", "--exercises-dir", str(work), "calc_loss_loader", "train_model_simple",
                      cwd=release)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    from grader.gradebook import max_points

    full = max_points(["calc_loss_loader", "train_model_simple"])["total"]
    assert re.search(rf"Total\s+{full}/{full}", proc.stdout), proc.stdout
    if os.geteuid() == 0:
        assert "warning" not in proc.stderr, proc.stderr  # the full sandbox


def test_a_missing_dependency_is_named(release, tmp_path):
    """In the release, evaluate_model runs on the student's calc_loss_loader: when that is
    still a stub, the report says so instead of 'evaluate_model is not implemented'."""
    from grader.release import release_exercises

    work = tmp_path / "work"
    work.mkdir()
    stubs = release_exercises(ROOT / "solutions")
    done = release_exercises(ROOT / "solutions", keep_solution=True)
    for name in stubs:
        (work / name).write_text(done[name] if name == "evaluate_model.py" else stubs[name], encoding="utf-8")
    proc = run_grader("evaluate_model", "--exercises-dir", str(work), cwd=release)
    assert proc.returncode == 1
    assert "not implemented yet, and evaluate_model depends on it" in proc.stdout, proc.stdout


@pytest.mark.parametrize("argv", [["regen"], ["make-exercises"], ["release", "--output", "x"],
                                  ["notebook", "--output", "x"], ["gradescope", "--output", "x.zip"],
                                  ["--solutions"]])
def test_kit_only_commands_are_refused_in_one_line(release, argv):
    proc = run_grader(*argv, cwd=release, timeout=60)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "release" in proc.stderr
    assert not (release / "x").exists() and not (release / "x.zip").exists()


def test_release_never_writes_into_a_non_empty_folder(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me", encoding="utf-8")
    proc = run_grader("release", "--output", str(out), cwd=ROOT, timeout=60)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


# --- what the notebook and the exercises import, a plain install, and where a failure comes from ----


def reference_names_used() -> set[str]:
    """The names the kit's notebook setup cell and exercises import from reference (not exercises)."""
    from grader.make_notebook import SETUP_NAMES

    names = set(SETUP_NAMES)
    for exercise in EXERCISES:
        tree = ast.parse((ROOT / "exercises" / f"{exercise}.py").read_text(encoding="utf-8"))
        names |= {a.name for n in tree.body if isinstance(n, ast.ImportFrom) and n.module == "reference"
                  for a in n.names}
    return names - set(EXERCISES)


def test_the_release_ships_what_the_notebook_and_the_exercises_import(release):
    names = sorted(reference_names_used())
    assert "generate_and_print_sample" in names
    done = subprocess.run([sys.executable, "-c", f"from reference import {', '.join(names)}"], cwd=release,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_the_notebook_is_graded_in_the_release(release, tmp_path):
    """Its setup cell imports generate_and_print_sample from reference: 0/65 before."""
    import nbformat

    from grader.make_notebook import build_notebook

    path = tmp_path / "chapter5.ipynb"
    nbformat.write(build_notebook(with_solutions=True), str(path))
    proc = run_grader("--submission", str(path), "text_to_token_ids", "token_ids_to_text", cwd=release)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    from grader.gradebook import max_points

    full = max_points(["text_to_token_ids", "token_ids_to_text"])["total"]
    assert re.search(rf"Total\s+{full}/{full}", proc.stdout), proc.stdout


def test_given_code_in_the_release_calls_the_callers_own_exercises(release):
    script = (
        "import torch\n"
        "from reference import GPTModel, generate_and_print_sample, get_tokenizer\n"
        "def text_to_token_ids(text, tokenizer):\n"
        "    return torch.tensor(tokenizer.encode(text)).unsqueeze(0)\n"
        "def token_ids_to_text(ids, tokenizer):\n"
        "    return 'MINE:' + tokenizer.decode(ids.squeeze(0).tolist())\n"
        "torch.manual_seed(0)\n"
        "cfg = dict(vocab_size=50257, context_length=8, emb_dim=8, n_heads=2, n_layers=1, drop_rate=0.0, qkv_bias=False)\n"
        "generate_and_print_sample(GPTModel(cfg), get_tokenizer(), 'cpu', 'Every effort')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=release, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("MINE:Every effort")


def test_a_missing_package_is_one_line_with_the_install_command(release):
    done = subprocess.run([sys.executable, "-c", "import sys, runpy; sys.modules['pytest'] = None; "
                           "sys.argv = ['grader', '--list']; runpy.run_module('grader', run_name='__main__')"],
                          cwd=release, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        "python -m grader: error: pytest is not installed here: python -m pip install pytest "
        "(or, in the kit's folder: python -m pip install -e .)"]


def test_the_release_install_line_installs_what_the_grader_imports(release):
    import tomllib

    from grader.deps import BATCH, GRADING

    readme = (release / "README.md").read_text(encoding="utf-8")
    assert "python -m pip install -e ." in readme
    deps = tomllib.loads((release / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    installed = {re.split(r"[<>=!~ ]", d)[0] for d in deps}
    assert set(GRADING.values()) | set(BATCH.values()) <= installed


def test_a_cascading_failure_says_where_it_comes_from(release, tmp_path):
    from grader.release import release_exercises

    work = tmp_path / "work"
    work.mkdir()
    for name, text in release_exercises(ROOT / "solutions", keep_solution=True).items():
        if name == "calc_loss_batch.py":  # a known mistake: the loss doubled
            text = text.replace("target_batch.flatten())", "target_batch.flatten()) * 2")
        (work / name).write_text(text, encoding="utf-8")
    proc = run_grader("--exercises-dir", str(work), "calc_loss_batch", "calc_loss_loader", cwd=release)
    assert proc.returncode == 1
    assert ("calc_loss_loader: note: calc_loss_loader ran on your calc_loss_batch, which fails its own checks: "
            "the cause may be there, fix calc_loss_batch first") in proc.stdout, proc.stdout
    alone = run_grader("--exercises-dir", str(work), "calc_loss_loader", "--format", "json", cwd=release)
    assert "grade it too (python -m grader calc_loss_batch)" in alone.stdout


# --- the GitHub Classroom template repository is the release ------------------------------------


def release_workflow(release) -> dict:
    yaml = pytest.importorskip("yaml")
    return yaml.safe_load((release / ".github" / "workflows" / "classroom.yml").read_text(encoding="utf-8"))


def test_the_release_is_the_classroom_template_repository(release):
    from grader.deps import TORCH_VERSION

    workflow = release_workflow(release)
    assert workflow["name"] == "Autograding Tests" and list(workflow["jobs"]) == ["run-autograding-tests"]
    steps = workflow["jobs"]["run-autograding-tests"]["steps"]
    uses = {s["uses"].split("@")[0]: s for s in steps if "uses" in s}
    version = {name: int(step["uses"].split("@v")[1].split(".")[0]) for name, step in uses.items()}
    assert version["actions/checkout"] >= 4 and version["actions/setup-python"] >= 5
    assert uses["actions/setup-python"]["with"]["cache"] == "pip"
    assert (release / uses["actions/setup-python"]["with"]["cache-dependency-path"]).is_file()
    commands = "\n".join(s.get("run", "") for s in steps)
    assert f'"torch=={TORCH_VERSION}"' in commands and "python -m pip install -e ." in commands
    assert "python -m grader --format classroom --output results.json" in commands
    assert (release / ".gitignore").is_file()
    assert not (release / "solutions").exists() and not (release / "reference" / "pretraining.py").exists()


@pytest.mark.parametrize("nested", [False, True])
def test_the_classroom_grading_step_reports_points_in_the_release(release, tmp_path, nested):
    """The workflow's grading step, run as GitHub Actions would (bash, GITHUB_OUTPUT) in the
    release: its stubs score 0 of all the points, in tests of one point each; with ``nested`` the grader
    refuses to run (exit 2) and the fallback still reports 0 points with status error."""
    import base64
    import json
    import os

    from grader.checks import check_definitions

    total = sum(c["points"] for e in EXERCISES for c in check_definitions()[e]["checks"])
    step = next(s for s in release_workflow(release)["jobs"]["run-autograding-tests"]["steps"] if s.get("id") == "grader")
    output, summary = tmp_path / "github_output", tmp_path / "summary.md"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "CH5_GRADER_IN_NOTEBOOK")}
    env.update(GITHUB_OUTPUT=str(output), GITHUB_STEP_SUMMARY=str(summary))
    if nested:
        env["CH5_GRADER_IN_NOTEBOOK"] = "1"
    done = subprocess.run(["bash", "-e", "-c", step["run"]], cwd=release, env=env, capture_output=True,
                          text=True, timeout=600)
    (release / "results.json").unlink(missing_ok=True)
    assert done.returncode == 0, done.stderr
    key, _, value = output.read_text().strip().partition("=")
    results = json.loads(base64.b64decode(value))
    assert key == "result" and results["version"] == 3 and results["max_score"] == total
    assert results["score"] == 0 == sum(t["score"] for t in results["tests"])
    assert summary.read_text().startswith(f"### Points: 0/{total}")
    if nested:
        assert results["status"] == "error" and results["tests"] == [] and results["message"]
    else:
        assert results["status"] == "fail" and len(results["tests"]) == total
        assert f"0/{total} points; report written to results.json" in done.stderr
