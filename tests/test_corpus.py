"""The grader against a corpus of whole submissions (issue "Grading you can trust").

tests/corpus/ holds single-file submissions: correct variants (full marks), common
mistakes (points lost in their own exercise only, with the likely cause named) and
hostile files (they earn nothing they did not earn, and every exercise is reported).
Their expected verdicts are data: tests/corpus/manifest.toml.

The corpus is graded in this pytest process, forking the grader's children from it
(``runner.prepare_parent`` once, via the ``grading_ctx`` fixture): one queue of
(submission, exercise) children, two at a time, made with ``runner.plan`` and scored
with ``runner.score`` as ``runner.grade`` does; a file that overrides the limits gets them
for the exercises it attacks only (its other exercises run under the grader's own). Each file is graded from a copy in a folder of its
own, so that the test sees anything written next to it. A few tests at the end run
the real command line, ``python -m grader``, in a subprocess.

A correct or mistaken file's child for an exercise is run only once per identical code
(``child_code``): the same module-level statements and the same definitions of the
exercise's function and of every function or class it names, transitively. Such a
child runs the same code on the same inputs, so the other files reuse its result;
e.g. the mistakes in manual_cross_entropy reuse book.py's train_model_simple, while a
mistake in calc_loss_batch runs calc_loss_loader, evaluate_model and train_model_simple
again (they name it). Hostile files always run every exercise.
"""

from __future__ import annotations

import ast
import contextlib
import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

import pytest

from grader import EXERCISES
from grader.checks import check_definitions

ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path(__file__).resolve().parent / "corpus"
MANIFEST = tomllib.loads((CORPUS / "manifest.toml").read_text(encoding="utf-8"))
BOOK = CORPUS / "correct" / "book.py"

CORRECT = sorted(MANIFEST["correct"]["files"])
MISTAKES = sorted(MANIFEST["mistakes"])
HOSTILE = sorted(name for name, spec in MANIFEST["hostile"].items() if not spec.get("instructor"))
INSTRUCTOR = sorted(name for name, spec in MANIFEST["hostile"].items() if spec.get("instructor") is True)
GRADER_ATTACKS = sorted(name for name, spec in MANIFEST["hostile"].items() if spec.get("instructor") == "batch")
KINDS = {"correct": CORRECT, "mistakes": MISTAKES, "hostile": HOSTILE}
ALL = [(kind, name) for kind, names in KINDS.items() for name in names] + \
    [("hostile", name) for name in INSTRUCTOR + GRADER_ATTACKS]
# The exercises the GRADER_ATTACKS batch grades: those the files attack.
ATTACKED = [e for e in EXERCISES if any(e in MANIFEST["hostile"][n].get("attacks", MANIFEST["hostile"][n]["zero"])
                                        for n in GRADER_ATTACKS)]

# The kinds of mistake the issue lists, each with the corpus file that makes it.
ISSUE_MISTAKES = {
    "token ids without the batch dimension": "ids_no_batch_dim",
    "<|endoftext|> not allowed as a special token": "ids_special_not_allowed",
    "decoding only part of the ids": "decode_drops_last",
    "cross-entropy without the negation": "ce_no_negation",
    "cross-entropy with a sum instead of a mean": "ce_sum_not_mean",
    "softmax over the wrong dimension": "ce_softmax_dim1",
    "returning a hard-coded book value": "ce_hard_coded",
    "batch loss on unflattened targets": "batch_unflattened",
    "batch loss on mismatched targets": "batch_targets_transposed",
    "loader loss divided by the loader length": "loader_divides_by_len",
    "num_batches not clamped to the loader": "loader_not_clamped",
    "an empty loader raising instead of returning nan": "loader_empty_raises",
    "a tensor (with its graph) returned instead of a float": "loader_returns_tensor",
    "evaluation that leaves the model in eval mode": "eval_stays_in_eval_mode",
    "evaluation that never switches to eval mode": "eval_never_eval_mode",
    "training without zero_grad": "train_no_zero_grad",
    "optimizer step before backward": "train_step_before_backward",
    "model never put back in train mode": "train_no_train_mode",
    "tokens counted as rows instead of elements": "train_tokens_as_rows",
    "step counter starting at 0": "train_step_from_zero",
    "plot without the second x-axis 'Tokens seen'": "plot_no_tokens_axis",
    "plot without axis labels": "plot_no_labels",
    "plot drawing training loss twice": "plot_train_twice",
}
ISSUE_HOSTILE = {
    "replacing torch.allclose / torch.testing functions": "patch_comparisons",
    "printing a fake score": "fake_score",
    "writing a results file (working folder)": "write_results_cwd",
    "writing a results file (next to the submission)": "write_results_next_to_it",
    "sys.exit in a function": "sys_exit_in_function",
    "os._exit in a function": "os_exit_in_function",
    "raise SystemExit in a function": "raise_systemexit",
    "KeyboardInterrupt in a function": "keyboard_interrupt",
    "an infinite loop": "infinite_loop",
    "allocating tens of GB": "allocate_40gb",
    "changing global state at import": "global_state_at_import",
    "changing global state in one function": "global_state_in_function",
    "a background process holding the result pipe": "background_holds_pipe",
}
# Issue "Real notebooks, real stakes": graded under instructor grading (INSTRUCTOR).
ISSUE_INSTRUCTOR = {
    "the kit's own answers, reached by import, importlib, sys.modules or the source file": "kit_answers",
    "SIGSTOP of the grader": "stop_the_grader",
    "SIGKILL / SIGTERM of the grader": "kill_the_grader",
    "killing the other grading processes": "kill_siblings",
    "writing the results file and the kit as another user, from a detached process too": "write_results_file",
}
ISSUE_CORRECT = {
    "log-softmax with gather": "log_softmax_gather",
    "reshape/view instead of flatten": "reshape_view",
    "torch.inference_mode() instead of torch.no_grad()": "inference_mode",
    "a loader loop with itertools.islice": "islice_loader",
    "a plot built with plt.figure()/add_subplot": "figure_add_subplot",
    "a plot_losses that returns nothing and leaves the figure current": "plot_returns_nothing",
    "token ids built as torch.tensor([ids])": "ids_as_nested_list",
}
TOTAL = sum(c["points"] for e in EXERCISES for c in check_definitions()[e]["checks"])
CHILD_TIMEOUT_S = 60.0  # the grader's default; the corpus's children take 0.1-5 s each here


def corpus_params(kind: str) -> list:
    return [pytest.param(kind, name, id=f"{kind}-{name}") for name in KINDS[kind]]


def entry(kind: str, name: str) -> dict:
    return {} if kind == "correct" else MANIFEST[kind][name]


def corpus_file(kind: str, name: str) -> Path:
    return CORPUS / kind / f"{name}.py"


# --------------------------------------------------------------------------- the corpus itself


def test_manifest_lists_every_corpus_file():
    on_disk = {(p.parent.name, p.stem) for p in CORPUS.glob("*/*.py")}
    assert on_disk == set(ALL)


def test_corpus_covers_the_kinds_of_the_issue():
    assert set(ISSUE_MISTAKES.values()) <= set(MISTAKES)
    assert set(ISSUE_HOSTILE.values()) <= set(HOSTILE)
    assert set(ISSUE_INSTRUCTOR.values()) <= set(INSTRUCTOR + GRADER_ATTACKS)
    assert set(ISSUE_CORRECT.values()) <= set(CORRECT)
    assert {e["exercise"] for e in MANIFEST["mistakes"].values()} == set(EXERCISES)


def _functions(path: Path) -> dict[str, str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {node.name: ast.dump(node) for node in tree.body if isinstance(node, ast.FunctionDef)}


@pytest.mark.parametrize("name", MISTAKES)
def test_mistake_changes_exactly_one_function_of_the_book(name):
    book, mistaken = _functions(BOOK), _functions(corpus_file("mistakes", name))
    assert set(EXERCISES) <= set(book) and set(mistaken) == set(book)
    changed = [fn for fn in book if book[fn] != mistaken[fn]]
    assert changed == [MANIFEST["mistakes"][name]["exercise"]]


# --------------------------------------------------------------------------- grading it


@pytest.fixture(scope="session")
def corpus_reports(request, grading_ctx, tmp_path_factory):
    """(kind, name) -> (Report, folder of the graded copy), for the corpus files this session selected."""
    from grader import runner
    from grader.sandbox import Limits, run_isolated
    from grader.sources import open_submission

    wanted = {
        (item.callspec.params["kind"], item.callspec.params["name"])
        for item in request.session.items
        if getattr(item, "module", None) is not None and item.module.__file__ == __file__
        and hasattr(item, "callspec")
        and {"kind", "name"} <= set(item.callspec.params)
    }
    copies = {}
    wanted -= {("hostile", name) for name in INSTRUCTOR + GRADER_ATTACKS}  # see instructor_reports, grader_attacks
    for kind, name in sorted(wanted):
        folder = tmp_path_factory.mktemp(f"{kind}-{name}")
        copies[kind, name] = shutil.copy(corpus_file(kind, name), folder)

    reports = {}
    queue, plans, same_code = {}, {}, {}
    own_limits = {}  # (file, exercise) -> Limits, for the exercises a file attacks with its own limits
    first_with = {}  # child_code -> the (file, exercise) child that runs it
    for key, path in copies.items():
        spec = entry(*key)
        source = open_submission(Path(path))
        known, tasks = runner.plan(source, EXERCISES, grading_ctx)
        plans[key] = (source, known)
        for exercise, work in tasks.items():
            if ("timeout_s" in spec or "memory_mb" in spec) and exercise in spec["zero"]:
                # a tight limit for the exercise it attacks; the others keep the grader's own,
                # so that a slow exercise on a loaded machine is not stopped by the file's limit
                own_limits[key, exercise] = (work, Limits(timeout_s=spec.get("timeout_s", CHILD_TIMEOUT_S),
                                                          memory_mb=spec.get("memory_mb", 2048)))
                continue
            code = child_code(corpus_file(*key), exercise) if key[0] != "hostile" else (key, exercise)
            if code in first_with:
                same_code[key, exercise] = first_with[code]
            else:
                first_with[code] = (key, exercise)
                queue[key, exercise] = work
    # slowest first (train_model_simple), so both slots stay busy to the end
    order = sorted(queue, key=lambda k: k[1] != "train_model_simple")
    with lingering_processes_recorded():
        results = run_isolated({k: queue[k] for k in order}, Limits(timeout_s=CHILD_TIMEOUT_S), parallel=2)
        for child, (work, limits) in own_limits.items():
            results.update(run_isolated({child: work}, limits))
    results.update({child: results[ran] for child, ran in same_code.items()})
    for key, (source, known) in plans.items():
        children = {**known, **{ex: results[key, ex] for ex in EXERCISES if (key, ex) in results}}
        seconds = sum(child.seconds for child in children.values())
        reports[key] = runner.score(source.label, EXERCISES, children, "cpu", seconds)
    return {key: (reports[key], Path(copies[key]).parent) for key in copies}


MARKERS_ENV = "CH5_CORPUS_MARKERS"  # a hostile file that leaves a process behind names it there (its pid)
MARKERS = []  # the folders used this session


@pytest.fixture(scope="session", autouse=True)
def _remove_markers():
    yield
    for folder in MARKERS:
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def lingering_processes_recorded():
    """Give the graded files a folder (world-writable: the sandbox's users write there) for the pids
    of the processes they leave behind; ``test_no_process_is_left_behind`` checks them."""
    folder = tempfile.mkdtemp(prefix="ch5-corpus-markers-")
    os.chmod(folder, 0o1777)
    MARKERS.append(folder)
    old = os.environ.get(MARKERS_ENV)
    os.environ[MARKERS_ENV] = folder
    try:
        yield folder
    finally:
        if old is None:
            del os.environ[MARKERS_ENV]
        else:
            os.environ[MARKERS_ENV] = old


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as f:
            return "\nState:\tZ" not in f.read()
    except OSError:
        return False


def child_code(path: Path, exercise: str) -> str:
    """What a grading child of ``exercise`` executes from the file at ``path``: its module-level
    statements (but the docstring) and the definitions of the exercise's function and of
    every function or class of the module it names, transitively."""
    body = ast.parse(path.read_text(encoding="utf-8")).body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    kinds = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    defs = {node.name: node for node in body if isinstance(node, kinds)}
    named, todo = set(), [exercise]
    while todo:
        name = todo.pop()
        if name in defs and name not in named:
            named.add(name)
            todo.extend(node.id for node in ast.walk(defs[name]) if isinstance(node, ast.Name))
    statements = [ast.dump(node) for node in body if not isinstance(node, kinds)]
    return repr((statements, sorted(ast.dump(defs[name]) for name in named)))


def report_line(ex) -> str:
    """What the report says about an exercise in one line: its status message, or its first failed check's."""
    if ex.status != "graded":
        return ex.message
    failed = [c for c in ex.checks if not c.passed]
    return failed[0].message if failed else ""


def scores(report) -> dict[str, str]:
    return {ex.name: f"{ex.score:g}/{ex.max_score:g}" for ex in report.exercises}


def check_common(report, folder: Path, spec: dict, name: str):
    """What holds for every file: every exercise reported, nothing written next to it."""
    assert [ex.name for ex in report.exercises] == list(EXERCISES)
    for ex in report.exercises:
        assert ex.status in ("graded", "not_implemented", "load_error", "timeout", "memory", "crashed")
        assert ex.status == "graded" or ex.message, ex.name
        assert ex.status != "not_implemented", ex.name  # every corpus file defines every function
    assert sorted(os.listdir(folder)) == sorted([f"{name}.py", *spec.get("writes", [])])


@pytest.mark.parametrize("kind,name", corpus_params("correct"))
def test_correct_variant_gets_full_marks(corpus_reports, kind, name):
    report, folder = corpus_reports[kind, name]
    check_common(report, folder, {}, name)
    failed = [f"{c.exercise}.{c.id}: {c.message}" for ex in report.exercises for c in ex.checks if not c.passed]
    assert report.full_marks, failed


@pytest.mark.parametrize("kind,name", corpus_params("mistakes"))
def test_mistake_loses_points_in_its_exercise_only_and_names_the_cause(corpus_reports, kind, name):
    report, folder = corpus_reports[kind, name]
    spec = entry(kind, name)
    check_common(report, folder, spec, name)
    wrong = {e: s for e, s in scores(report).items() if s.split("/")[0] != s.split("/")[1]}
    assert list(wrong) == [spec["exercise"]], scores(report)
    ex = next(e for e in report.exercises if e.name == spec["exercise"])
    assert ex.status == "graded"
    first = next(c for c in ex.checks if not c.passed)
    if "cause" in spec:
        assert spec["cause"] in first.diagnosis, (first.id, first.message, first.diagnosis)
    else:
        assert spec["message"] in first.message, (first.id, first.message)
    assert first.hint  # failing output shows the first relevant hint
    from grader.report import render_text

    text = render_text(report)
    assert f"likely cause: {first.diagnosis}" in text if first.diagnosis else first.message in text
    assert f"hint: {first.hint}" in text


@pytest.mark.parametrize("kind,name", corpus_params("hostile"))
def test_hostile_submission_earns_nothing_and_every_exercise_is_reported(corpus_reports, kind, name):
    report, folder = corpus_reports[kind, name]
    check_hostile(report, folder, entry(kind, name), name)


def check_hostile(report, folder: Path, spec: dict, name: str):
    """The `zero` exercises score 0 with `says` in their one line and no "likely cause"; the others full marks."""
    from grader.report import RENDERERS

    check_common(report, folder, spec, name)
    zero = list(EXERCISES) if spec["zero"] == "all" else spec["zero"]
    for ex in report.exercises:
        if ex.name in zero:
            assert ex.score == 0, scores(report)
            line = report_line(ex)
            assert "\n" not in line and re.search(spec["says"], line), (ex.name, line)
            # nonsense matches no known mistake: a "likely cause" here would mislead
            assert not any(c.diagnosis for c in ex.checks), [(c.id, c.diagnosis) for c in ex.checks]
        else:
            assert ex.score == ex.max_score, (ex.name, scores(report), report_line(ex))
    for fmt, render in RENDERERS.items():
        text = render(report)
        assert "Traceback" not in text, fmt
        if "absent" in spec and fmt in ("text", "json"):  # other formats carry what the code printed
            assert spec["absent"] not in text, fmt


def test_no_process_is_left_behind(corpus_reports):
    """background_holds_pipe leaves two sleeping processes holding the result pipe (one detached
    with setsid): grading neither waited for them (its verdict) nor left them running."""
    if ("hostile", "background_holds_pipe") not in corpus_reports:
        pytest.skip("background_holds_pipe was not graded in this session")
    pids = [int(name) for folder in MARKERS for name in os.listdir(folder)]
    assert len(pids) >= 2  # what the file reports having started: else this test shows nothing
    assert not [pid for pid in pids if alive(pid)]


# --------------------------------------------------------------------------- instructor grading


def needs_root():
    if os.geteuid() != 0:
        pytest.skip("instructor grading's sandbox needs root (Gradescope and most containers run the "
                    "grader as root); these tests run as a normal user here")


@pytest.fixture(scope="session")
def instructor_reports(grading_ctx, tmp_path_factory):
    """The INSTRUCTOR files graded in this process under instructor grading (runner.plan and
    runner.score, as runner.grade does, with lockdown.prepare's sandbox): name -> (Report, folder)."""
    from grader import runner
    from grader.lockdown import prepare
    from grader.sandbox import Limits, run_isolated
    from grader.sources import open_submission

    needs_root()
    lockdown = prepare(2)
    reports = {}
    for name in INSTRUCTOR:
        folder = tmp_path_factory.mktemp(f"instructor-{name}")
        source = open_submission(Path(shutil.copy(corpus_file("hostile", name), folder)))
        known, tasks = runner.plan(source, EXERCISES, grading_ctx)
        order = sorted(tasks, key=lambda e: e != "train_model_simple")
        results = run_isolated({e: tasks[e] for e in order}, Limits(timeout_s=CHILD_TIMEOUT_S), parallel=2,
                               lockdown=lockdown)
        children = {**known, **results}
        reports[name] = (runner.score(source.label, EXERCISES, children, "cpu", 0.0), folder, lockdown)
    return reports


@pytest.mark.parametrize("name", INSTRUCTOR)
def test_hostile_submission_under_instructor_grading_earns_nothing(instructor_reports, name):
    report, folder, lockdown = instructor_reports[name]
    assert lockdown.drop and lockdown.mounts and not lockdown.problems  # the full sandbox
    check_hostile(report, folder, MANIFEST["hostile"][name], name)


@pytest.fixture(scope="session")
def grader_attacks(tmp_path_factory):
    """The GRADER_ATTACKS files graded together, on the ATTACKED exercises, by ``python -m grader batch``
    (instructor grading) in a subprocess of its own session. A dict: the run's return code, stdout,
    stderr, folder, gradebook rows and text reports by file, the markers folder, the kit's frozen
    files as they were before."""
    needs_root()
    base = tmp_path_factory.mktemp("grader-attacks")
    folder, reports, gradebook = base / "submissions", base / "reports", base / "gradebook.csv"
    folder.mkdir()
    for name in GRADER_ATTACKS:
        shutil.copy(corpus_file("hostile", name), folder)
    kit_files = {p: p.read_bytes() for p in (ROOT / "grader" / "expected").glob("*.pt")}
    with lingering_processes_recorded() as markers:
        command = [sys.executable, "-m", "grader", "batch", str(folder), *ATTACKED, "--output", str(gradebook),
                   "--reports", str(reports), "--jobs", "2"]
        process = subprocess.Popen(command, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:
            out, err = process.communicate(timeout=600)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # stopped (SIGSTOP) or hung: end it, and fail
            process.communicate()
            pytest.fail("python -m grader batch did not finish: a hostile file stopped the grader")
    from grader.gradebook import POINTS_POSSIBLE

    rows = {row["submission"]: row for row in csv.DictReader(gradebook.open(encoding="utf-8"))
            if row["submission"] != POINTS_POSSIBLE}  # the row an LMS reads the maximum from
    texts = {name: (reports / f"{name}.py.txt").read_text(encoding="utf-8") for name in GRADER_ATTACKS}
    return {"returncode": process.returncode, "stdout": out, "stderr": err, "folder": folder, "base": base,
            "rows": rows, "texts": texts, "markers": markers, "kit_files": kit_files}


def test_grader_attacks_leave_the_batch_its_gradebook_and_the_kit(grader_attacks):
    run = grader_attacks
    assert run["returncode"] == 0, run["stderr"]
    assert "warning" not in run["stderr"], run["stderr"]  # the probe found the full sandbox
    assert sorted(run["rows"]) == sorted(f"{name}.py" for name in GRADER_ATTACKS)
    assert "FAKE" not in (run["base"] / "gradebook.csv").read_text(encoding="utf-8")
    assert sorted(os.listdir(run["folder"])) == sorted(f"{name}.py" for name in GRADER_ATTACKS)
    assert sorted(os.listdir(run["base"] / "reports")) == sorted(f"{name}.py.txt" for name in GRADER_ATTACKS)
    assert all(path.read_bytes() == data for path, data in run["kit_files"].items())  # the kit is unchanged


def test_grader_attacks_processes_left_behind_are_ended(grader_attacks):
    """write_results_file leaves a detached process (setsid, double fork) that keeps trying to write."""
    pids = [int(name) for name in os.listdir(grader_attacks["markers"])]
    assert pids  # it did start one: else this test shows nothing
    assert not [pid for pid in pids if alive(pid)]


def exercise_section(text: str, exercise: str) -> list[str]:
    """The lines of a text report about ``exercise`` below its table: its status line, or each
    failed check's line with the indented lines under it."""
    lines, inside = [], False
    for line in text.splitlines():
        if line.startswith((f"{exercise}: ", f"{exercise} [")):
            inside = True
        elif not line.startswith("  "):
            inside = False
        if inside:
            lines.append(line)
    return lines


@pytest.mark.parametrize("name", GRADER_ATTACKS)
def test_grader_attack_earns_nothing_and_harms_no_other_grading(grader_attacks, name):
    spec = MANIFEST["hostile"][name]
    row, text = grader_attacks["rows"][f"{name}.py"], grader_attacks["texts"][name]
    full = {e: sum(c["points"] for c in check_definitions()[e]["checks"]) for e in EXERCISES}
    assert row["error"] == "", row
    for exercise in ATTACKED:
        if exercise in spec["zero"]:
            assert row[exercise] == "0", (exercise, row)
            section = exercise_section(text, exercise)
            messages = [line.strip() for line in section if line.startswith("  ")]  # under the failed checks
            first = section[0].split(": ", 1)[1] if section[0].startswith(f"{exercise}: ") else messages[0]
            assert re.search(spec["says"], first), (exercise, first)
            assert not any(line.strip().startswith("likely cause:") for line in section), section
        else:
            assert row[exercise] == f"{full[exercise]:g}", (exercise, row, exercise_section(text, exercise))
    assert "Traceback" not in text


def test_state_a_submission_changes_is_undone_before_each_scenario(grading_ctx):
    """In one grading child (forked here, so this process keeps its own state): a function that
    changes the default dtype and device, grad mode, threads and seed finds them reset at every
    scenario of its exercise."""
    from grader.child import run_scenarios
    from grader.sandbox import Limits, run_isolated

    def meddling(text, tokenizer):
        import torch

        state = [torch.get_default_dtype() == torch.float32, torch.empty(0).device.type == "cpu",
                 torch.is_grad_enabled(), torch.get_num_threads(), int(torch.randint(0, 10**6, ()))]
        torch.set_default_dtype(torch.float64)
        torch.set_default_device("meta")
        torch.set_grad_enabled(False)
        torch.set_num_threads(2)
        torch.manual_seed(999)
        return state

    def work():
        return {"status": "ran", "outputs": run_scenarios("text_to_token_ids", meddling, grading_ctx, threads=1)}

    child = run_isolated({"state": work}, Limits(timeout_s=CHILD_TIMEOUT_S))["state"]
    states = [outputs["ids"] for outputs in child.outputs.values()]
    assert len(states) == 3 and states[0][:4] == [True, True, True, 1]
    assert all(state == states[0] for state in states)  # the seed too: the same draw every time


# --------------------------------------------------------------------------- checks as data


def test_every_check_has_a_hint_and_a_seeded_input_besides_the_books():
    from grader.cli import hints
    from grader.checks import check_definitions, scenarios

    defs = check_definitions()
    for exercise in EXERCISES:
        checks = defs[exercise]["checks"]
        assert all(c.get("hint", "").strip() for c in checks), exercise
        printed = hints(exercise)
        assert all(c["hint"] in printed for c in checks)
        assert all(c["scenario"] in scenarios(exercise) for c in checks)
        # some check of every exercise runs on an input that is not the book's
        assert any(not c["scenario"].startswith("book") for c in checks), exercise


def test_every_known_mistake_has_a_message():
    from grader.checks import check_definitions, mistakes

    defs = check_definitions()
    for exercise in EXERCISES:
        assert set(mistakes(exercise)) <= set(defs[exercise]["mistakes"]), exercise


# --------------------------------------------------------------------------- the command line


def run_grader(*args, cwd=ROOT, timeout=300):
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    return subprocess.run([sys.executable, "-m", "grader", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_cli_json_output_replaces_a_fake_results_file(tmp_path):
    """Gradescope's case: the submission writes a full-score results.json where the grader's goes."""
    submission = Path(shutil.copy(corpus_file("hostile", "write_results_next_to_it"), tmp_path))
    output = tmp_path / "results.json"
    done = run_grader("--submission", submission, "--format", "json", "--output", output,
                      "text_to_token_ids", "token_ids_to_text")
    assert done.returncode == 1, done.stderr
    assert done.stdout == ""
    # text_to_token_ids earns its points, token_ids_to_text's fake results none
    got = sum(c["points"] for c in check_definitions()["text_to_token_ids"]["checks"])
    total = got + sum(c["points"] for c in check_definitions()["token_ids_to_text"]["checks"])
    assert done.stderr.strip().splitlines() == [f"{got}/{total} points; report written to {output}"]
    results = json.loads(output.read_text(encoding="utf-8"))
    assert (results["score"], sum(t["max_score"] for t in results["tests"])) == (got, total)
    assert {t["name"].split(":")[0] for t in results["tests"]} == {"text_to_token_ids", "token_ids_to_text"}
    assert all(t["score"] == 0 for t in results["tests"] if t["tags"] == ["token_ids_to_text"])
    assert sorted(os.listdir(tmp_path)) == ["results.json", submission.name]


def test_cli_full_marks_exit_0_and_printed_fake_score_never_reaches_the_output(tmp_path):
    submission = shutil.copy(corpus_file("hostile", "fake_score"), tmp_path)
    done = run_grader("--submission", submission, "token_ids_to_text")
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"token_ids_to_text +6/6 +passed", done.stdout), done.stdout
    assert "FAKE-SCORE" not in done.stdout + done.stderr


def _bad_inputs(tmp_path: Path) -> dict:
    folder = tmp_path / "folder.py"
    folder.mkdir()
    latin1 = tmp_path / "latin1.py"
    latin1.write_bytes("# caf\xe9\n".encode("latin-1") + BOOK.read_bytes())
    missing_module = tmp_path / "imports_missing.py"
    missing_module.write_text("import no_such_module_for_the_grader\n" + BOOK.read_text(encoding="utf-8"),
                              encoding="utf-8")
    return {
        "missing file": (["--submission", tmp_path / "nope.py"], "nope.py: no such file"),
        "folder": (["--submission", folder], "is a folder"),
        "not UTF-8": (["--submission", latin1], "is not UTF-8 text"),
        "module not installed": (["--submission", missing_module], "imports no_such_module_for_the_grader"),
        "unknown exercise": (["--submission", BOOK, "calc_los_batch"], "did you mean calc_loss_batch?"),
    }


@pytest.mark.parametrize("case", ["missing file", "folder", "not UTF-8", "module not installed", "unknown exercise"])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, case):
    """The command line's own code, run in this process: these stop before anything is graded."""
    from grader.cli import main

    args, says = _bad_inputs(tmp_path)[case]
    status = main([str(a) for a in args])
    out, err = capsys.readouterr()
    assert status == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("python -m grader: error: ") and says in lines[0], err


def test_cli_syntax_error_grades_0_everywhere_with_the_line(tmp_path):
    broken = tmp_path / "broken.py"
    lines = BOOK.read_text(encoding="utf-8").splitlines()
    lines[20] = lines[20] + " +"  # line 21 of the file: inside token_ids_to_text
    broken.write_text("\n".join(lines) + "\n", encoding="utf-8")
    done = run_grader("--submission", broken, "--format", "json")
    assert done.returncode == 1, done.stderr
    results = json.loads(done.stdout)
    assert results["score"] == 0 and sum(t["max_score"] for t in results["tests"]) == TOTAL
    assert {t["tags"][0] for t in results["tests"]} == set(EXERCISES)
    assert all("syntax error in broken.py line 21" in t["output"] for t in results["tests"])


def test_cli_checks_the_data_files_and_never_writes_into_the_kit(tmp_path):
    """On a copy of the kit: grading leaves its tree as it was; a changed data file stops it."""
    kit = tmp_path / "kit"
    shutil.copytree(ROOT, kit, ignore=shutil.ignore_patterns(
        ".git", "__pycache__", ".pytest_cache", ".benchmarks", "*.egg-info", "out", "tests"))

    def tree():
        return sorted(str(p.relative_to(kit)) for p in kit.rglob("*") if "__pycache__" not in p.parts)

    before = tree()
    done = run_grader("--submission", BOOK, "text_to_token_ids", cwd=kit)
    assert done.returncode == 0, done.stdout + done.stderr
    assert tree() == before

    verdict = kit / "data" / "the-verdict.txt"
    verdict.write_text(verdict.read_text(encoding="utf-8") + "\nAn extra line.\n", encoding="utf-8")
    done = run_grader("--submission", BOOK, "text_to_token_ids", cwd=kit)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and str(verdict) in lines[0] and "was changed" in lines[0], done.stderr
