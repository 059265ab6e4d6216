"""The text report's header and table rows, in a module that imports nothing heavy: the
command line prints the header before torch is imported (grader/live.py)."""

from __future__ import annotations


def points(value: float) -> str:
    return f"{value:g}"


def header_lines(source: str, device: str) -> list[str]:
    return [f"Grading {source} on {device}", ""]


def table_width(names) -> int:
    return max(map(len, names), default=10)


def table_row(ex, width: int) -> str:
    """An exercise's row: name, points, status ("passed", "2 of 7 checks failed", ...)."""
    score = f"{points(ex.score)}/{points(ex.max_score)}"
    return f"  {ex.name:<{width}}  {score:>6}  {ex.status_line}"


def pending_row(name: str, width: int, state: str) -> str:
    """The row of an exercise still being graded (on a terminal, until its result replaces it)."""
    return f"  {name:<{width}}  {'':>6}  {state}"


def total_row(score: float, max_score: float, width: int) -> str:
    total = f"{points(score)}/{points(max_score)}"
    return f"  {'Total':<{width}}  {total:>6}"
