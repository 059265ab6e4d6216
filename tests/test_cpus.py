"""``--jobs`` defaults to the CPUs the process may really use (grader/cpus.py): its affinity
mask and its cgroup's CPU quota, as a container sets them. Gradescope's default container
has 0.5 vCPU: one grading process, not two fighting over half a core.

The cgroup files are faked under a temporary root laid out like / (proc/self/cgroup,
sys/fs/cgroup/...).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from grader.cpus import available_cpus, cgroup_cpu_quota

AFFINITY = len(os.sched_getaffinity(0))


def fake_root(tmp_path: Path, cgroup: str, files: dict[str, str]) -> Path:
    (tmp_path / "proc/self").mkdir(parents=True)
    (tmp_path / "proc/self/cgroup").write_text(cgroup)
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return tmp_path


@pytest.mark.parametrize("cgroup, files, quota", [
    # cgroup v2, inside a container (its own cgroup at the mount's root): Gradescope's 0.5 vCPU
    ("0::/\n", {"sys/fs/cgroup/cpu.max": "50000 100000\n"}, 0.5),
    ("0::/\n", {"sys/fs/cgroup/cpu.max": "max 100000\n"}, None),  # no limit
    ("0::/\n", {"sys/fs/cgroup/cpu.max": "300000 100000\n"}, 3.0),
    # cgroup v2 on a host: the limit is on an ancestor of the process's cgroup
    ("0::/user.slice/session-1.scope\n", {"sys/fs/cgroup/user.slice/cpu.max": "150000 100000\n",
                                         "sys/fs/cgroup/user.slice/session-1.scope/cpu.max": "max 100000\n"}, 1.5),
    # cgroup v1 (Docker on older hosts): the path names the host's hierarchy, the files are at the mount's root
    ("12:cpu,cpuacct:/docker/abc\n4:memory:/docker/abc\n",
     {"sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us": "50000\n", "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us": "100000\n"}, 0.5),
    ("1:cpu:/\n", {"sys/fs/cgroup/cpu/cpu.cfs_quota_us": "-1\n", "sys/fs/cgroup/cpu/cpu.cfs_period_us": "100000\n"}, None),
    ("0::/\n", {}, None),  # no cgroup files at all (macOS, a minimal container)
])
def test_cgroup_cpu_quota(tmp_path, cgroup, files, quota):
    assert cgroup_cpu_quota(fake_root(tmp_path, cgroup, files)) == quota


@pytest.mark.parametrize("quota_line, expected", [
    ("50000 100000", 1),  # half a CPU still runs one job
    ("100000 100000", 1),
    ("150000 100000", min(AFFINITY, 2)),
    ("max 100000", AFFINITY),
    ("800000 100000", min(AFFINITY, 8)),  # never more than the affinity mask allows
])
def test_available_cpus_is_the_affinity_lowered_by_the_quota(tmp_path, quota_line, expected):
    root = fake_root(tmp_path, "0::/\n", {"sys/fs/cgroup/cpu.max": quota_line + "\n"})
    assert available_cpus(root) == expected


def test_no_proc_at_all_falls_back_to_the_affinity(tmp_path):
    assert available_cpus(tmp_path) == AFFINITY


def test_grade_command_defaults_jobs_to_the_available_cpus(monkeypatch, capsys):
    from grader import cli, runner
    from grader.grading import Report

    seen = {}

    def fake_grade(source, exercises, device, limits, parallel, **_):
        seen["parallel"] = parallel
        return Report([], "x", device)

    monkeypatch.setattr(cli, "available_cpus", lambda: 3)
    monkeypatch.setattr(runner, "grade", fake_grade)
    assert cli.main(["--solutions", "text_to_token_ids"]) == 0
    assert seen["parallel"] == 3
    assert cli.main(["--solutions", "--jobs", "1", "text_to_token_ids"]) == 0
    assert seen["parallel"] == 1
    capsys.readouterr()


def test_batch_defaults_jobs_to_the_available_cpus(monkeypatch, tmp_path):
    from grader import batch

    monkeypatch.setattr(batch, "available_cpus", lambda: 1)
    (tmp_path / "subs").mkdir()
    args = batch.build_parser().parse_args([str(tmp_path / "subs"), "--output", str(tmp_path / "g.csv")])
    assert args.jobs is None
    batch.check_args(args)
    assert args.jobs == 1


def test_help_says_the_default():
    from grader.cli import build_parser

    assert f"{available_cpus()} here" in " ".join(build_parser().format_help().split())
