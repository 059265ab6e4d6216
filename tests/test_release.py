"""``python -m grader release``: the kit as students get it.

One release is built per module (~1 s). The leak check below is written
independently of grader/release.py's own check, so a bug there cannot hide a leak.
"""

from __future__ import annotations

import ast
import keyword
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
    writes (signatures, docstrings, TODOs), the given code, the hints of checks.toml."""
    texts = [(ROOT / "reference" / m).read_text(encoding="utf-8") for m in ("data.py", "model.py")]
    texts += list(generated_files().values())
    text = (ROOT / "reference" / "pretraining.py").read_text(encoding="utf-8")
    texts += [ast.get_source_segment(text, node) for node in ast.parse(text).body
              if isinstance(node, ast.FunctionDef) and node.name in GIVEN]
    texts += [(ROOT / "grader" / "checks" / e / "checks.toml").read_text(encoding="utf-8") for e in EXERCISES]
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


def test_expected_values_are_the_kits_byte_for_byte(release):
    for path in (ROOT / "grader" / "expected").glob("*.pt"):
        assert (release / "grader" / "expected" / path.name).read_bytes() == path.read_bytes()


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
