"""How many grading processes to run at once by default: the CPUs this process may use.

A container often gets less CPU than the machine has cores (Gradescope's default
container: 0.5 vCPU on a many-core host), through its affinity mask or a cgroup quota;
``os.cpu_count()`` sees neither. Nothing here imports anything of the grader's.
"""

from __future__ import annotations

import math
import os
from pathlib import Path


def available_cpus(root: Path = Path("/")) -> int:
    """How many CPUs this process may really use (at least 1): its affinity mask, lowered
    by a cgroup CPU quota (cgroup v2 ``cpu.max``, v1 ``cpu.cfs_quota_us``), as containers
    set it (Gradescope's default container: 0.5 vCPU -> 1). A fractional quota counts as
    a whole CPU: a job on it still runs, only slower. ``root`` is for tests (a fake /).
    """
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # macOS has no affinity
        cpus = os.cpu_count() or 1
    quota = cgroup_cpu_quota(root)
    if quota is not None:
        cpus = min(cpus, math.ceil(quota))
    return max(1, cpus)


def cgroup_cpu_quota(root: Path = Path("/")) -> float | None:
    """The tightest CPU quota (in CPUs) on this process's cgroup or its ancestors, or None."""
    try:
        lines = (root / "proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    limits = []
    for line in lines:
        _, controllers, path = (line.split(":", 2) + ["", ""])[:3]
        if controllers == "":  # cgroup v2: "0::/path", files in /sys/fs/cgroup/<path>/cpu.max
            mounts, read = [root / "sys/fs/cgroup"], _read_cpu_max
        elif "cpu" in controllers.split(","):  # cgroup v1: cpu.cfs_quota_us / cpu.cfs_period_us
            mounts = [root / "sys/fs/cgroup" / name for name in ("cpu", "cpu,cpuacct", "cpuacct,cpu")]
            read = _read_cfs_quota
        else:
            continue
        parts = [p for p in path.strip().split("/") if p]
        # the process's cgroup and each ancestor; inside a container the path may name the
        # host's hierarchy while the container sees its own cgroup at the mount's root
        folders = {mount / Path(*parts[:n]) for mount in mounts for n in range(len(parts), -1, -1)}
        limits += [q for folder in folders if (q := read(folder)) is not None]
    return min(limits) if limits else None


def _read_cpu_max(folder: Path) -> float | None:
    try:
        quota, period = (folder / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        return None


def _read_cfs_quota(folder: Path) -> float | None:
    try:
        quota = int((folder / "cpu.cfs_quota_us").read_text())
        period = int((folder / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return None if quota <= 0 or period <= 0 else quota / period

