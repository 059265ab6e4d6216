"""The grader's layout: one folder per exercise, and an import graph without cycles.

A newcomer finds everything about one exercise in grader/checks/<exercise>/ (its checks,
scenarios and known mistakes). The grader's modules form layers: the error types at the
bottom, the core (checks, comparisons, sandbox, runner, reports) above them, the commands
(cli, batch, watch, notebook, gradescope, release) on top; nothing below imports the
commands. Imports inside functions count too: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

from grader import EXERCISES

GRADER = Path(__file__).resolve().parent.parent / "grader"
MAX_LINES = 400  # a file that grows past this should be split (issue: "the house as it grows")


def module_name(path: Path) -> str:
    rel = path.relative_to(GRADER.parent).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def grader_imports(path: Path) -> set[str]:
    """The grader modules ``path`` imports anywhere in its code (``from . import X`` resolved)."""
    here = module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "grader"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "grader":
                continue
            found.add(target)
            for alias in node.names:  # `from . import runner` imports the module grader.runner
                if (GRADER.parent / Path(*target.split("."), alias.name + ".py")).is_file():
                    found.add(f"{target}.{alias.name}")
    return found - {here}


def import_graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in GRADER.rglob("*.py")}
    return {name: {m for m in grader_imports(path) if m in modules} for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_grader_has_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, " -> ".join(cycle)


def test_the_core_never_imports_a_command():
    commands = {f"grader.{m}" for m in ("cli", "batch", "watch", "gradescope", "release", "release_leaks", "release_given",
                                        "make_notebook",
                                        "expected", "generate")}
    for module, imports in import_graph().items():
        if module not in commands and module != "grader.__main__":
            assert not imports & commands, f"{module} imports {sorted(imports & commands)}"


def test_the_error_types_import_nothing_of_the_graders():
    assert import_graph()["grader.errors"] == set()


def test_every_exercise_has_one_folder_with_its_checks_scenarios_and_mistakes():
    folders = {p.name for p in (GRADER / "checks").iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert folders == set(EXERCISES)
    for exercise in EXERCISES:
        for part in ("checks.toml", "scenarios.py", "mistakes.py"):
            assert (GRADER / "checks" / exercise / part).is_file(), f"grader/checks/{exercise}/{part}"


def test_no_grader_file_grows_past_the_limit():
    long = {str(p.relative_to(GRADER)): n for p in GRADER.rglob("*") if p.suffix in (".py", ".toml")
            and (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, long


def test_the_readme_lists_every_exercise_in_order_with_its_section_and_the_total():
    """The student table of README.md is written by hand: it must follow `python -m grader --list`."""
    import re

    from grader import EXERCISES
    from grader.checks import check_definitions

    text = (GRADER.parent / "README.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| (\d+) \| `(\w+)\.py` \| ([\d.]+) \|", text, flags=re.M)
    definitions = check_definitions()
    assert rows == [(str(i), e, definitions[e]["section"]) for i, e in enumerate(EXERCISES, 1)]
    from grader.gradebook import max_points

    assert f"{max_points(EXERCISES)['total']} points in all" in text
