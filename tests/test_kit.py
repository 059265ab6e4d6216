"""The kit's contract: solutions get full marks, untouched stubs get zero, exercises/ is generated."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from grader import EXERCISES
from grader.generate import drift, generated_files, stub_source, write_exercises
from grader.checks import check_definitions

from conftest import write_stubs

KIT = Path(__file__).resolve().parent.parent


def run_grader(*args, cwd=KIT):
    return subprocess.run([sys.executable, "-m", "grader", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def test_solutions_get_full_marks_and_exit_0():
    proc = run_grader("--solutions", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout)
    total = sum(c["points"] for e in EXERCISES for c in check_definitions()[e]["checks"])
    assert results["score"] == sum(t["max_score"] for t in results["tests"]) == total
    assert all(t["status"] == "passed" for t in results["tests"])
    assert {t["tags"][0] for t in results["tests"]} == set(EXERCISES)


def test_untouched_stubs_score_zero_and_say_not_implemented(tmp_path):
    proc = run_grader("--exercises-dir", str(write_stubs(tmp_path / "exercises")))
    assert proc.returncode == 1, proc.stderr
    table = proc.stdout.split("\n\n")[1].splitlines()
    for exercise in EXERCISES:
        (row,) = [line for line in table if line.split()[0] == exercise]
        assert row.split()[1].startswith("0/") and row.endswith("not implemented yet"), row
    assert "Traceback" not in proc.stdout + proc.stderr


def committed_text(relative: str) -> str | None:
    """The file as committed (git HEAD), or None without git history."""
    try:
        done = subprocess.run(["git", "-C", str(KIT), "show", f"HEAD:{relative}"], capture_output=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.decode("utf-8") if done.returncode == 0 else None


def test_exercises_are_generated_from_solutions():
    """exercises/ as committed (what students clone) is what solutions/ generates. The working
    folder may hold a student's work: a file that differs there is compared as committed."""
    generated = generated_files()
    differ = drift()
    committed = {name: committed_text(f"exercises/{name}") for name in differ}
    if any(text is None for text in committed.values()):
        pytest.skip(f"exercises/ differs ({', '.join(differ)}) and git has no committed copy to compare")
    stale = [name for name in differ if committed[name] != generated[name]]
    assert stale == [], "run `python -m grader make-exercises --force` after editing solutions/"


def test_every_stub_raises_not_implemented():
    for exercise in EXERCISES:
        namespace = {}
        exec(compile(generated_files()[f"{exercise}.py"], exercise, "exec"), namespace)
        with pytest.raises(NotImplementedError, match="not implemented yet"):
            namespace[exercise](*([None] * namespace[exercise].__code__.co_argcount))


def test_make_exercises_keeps_a_students_edited_file(tmp_path):
    write_exercises(tmp_path, log=lambda *_: None)
    edited = tmp_path / "calc_loss_batch.py"
    edited.write_text("# my work\n")
    kept = write_exercises(tmp_path, log=lambda *_: None)
    assert kept == ["calc_loss_batch.py"] and edited.read_text() == "# my work\n"
    write_exercises(tmp_path, force=True, log=lambda *_: None)
    assert "NotImplementedError" in edited.read_text()


def test_a_solution_without_region_is_refused():
    from grader.generate import GenerateError

    with pytest.raises(GenerateError):
        stub_source("def f():\n    return 1\n", "f")


def test_every_check_has_points_and_a_hint():
    for exercise in EXERCISES:
        checks = check_definitions()[exercise]["checks"]
        assert checks, exercise
        for check in checks:
            assert check["points"] > 0 and check["hint"].strip() and check["what"].strip(), check


def test_a_closed_pipe_is_not_a_traceback():
    # `python -m grader | head`: the reader may leave before the report is written
    proc = subprocess.run(["bash", "-c", f"'{sys.executable}' -m grader --solutions text_to_token_ids | true"],
                          cwd=KIT, capture_output=True, text=True, timeout=300)
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr, proc.stderr


def test_value_checks_look_at_values_only():
    """A right value of the wrong type fails the exercise's type check, never its value checks
    (points in proportion to the mistake, grader/checks/__init__.py)."""
    from grader.compare import VALUE_COMPARES

    for exercise in EXERCISES:
        for check in check_definitions()[exercise]["checks"]:
            if check["compare"] in VALUE_COMPARES:
                assert not {"type", "dtype", "dim"} & set(check), f"{exercise}.{check['id']}: make it a type check"
            if check["compare"] in ("type", "devices"):
                assert check.get("with_values"), f"{exercise}.{check['id']}: a type alone is no answer"


def test_every_format_the_command_line_offers_is_rendered():
    from grader.options import FORMATS
    from grader.report import RENDERERS

    assert set(FORMATS) == set(RENDERERS)


def test_the_readme_is_the_student_guide_and_links_the_instructor_guide():
    readme = (KIT / "README.md").read_text(encoding="utf-8")
    guide = KIT / "docs" / "instructors.md"
    assert "[docs/instructors.md](docs/instructors.md)" in readme and guide.is_file()
    for section in ("## Install", "## Grade your work", "### More detail: `-v`", "## Re-grade on every save: `--watch`",
                    "## Working in Jupyter"):
        assert section in readme, section
    for anchor in re.findall(r"\(docs/instructors\.md#([\w-]+)\)", readme):  # links into the guide land
        titles = re.findall(r"^#{2,4} (.+)$", guide.read_text(encoding="utf-8"), re.M)  # any level: GitHub anchors all
        assert anchor in {re.sub(r"[^\w\- ]", "", t).strip().lower().replace(" ", "-") for t in titles}, anchor
