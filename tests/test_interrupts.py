"""Ctrl-C stops the run tool: the first interrupt cancels the queue and keeps the running
runs' checkpoints, the second stops at once, and no worker outlives the tool, even killed.
Real signals, sent to the tool running in a subprocess (smoke profile, TME 9's 26 runs)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


def start(tmp_path, jobs: int) -> subprocess.Popen:
    env = {
        **os.environ,
        "TME_CACHE_DIR": str(tmp_path / "cache"),
        "TME_PROFILE": "smoke",
        "TME_THREADS": "1",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "tme_lib.runs", "tme9", "--jobs", str(jobs)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def workers_of(process: subprocess.Popen, at_least: int, within: float = 60.0) -> list:
    """The tool's child processes, once there are ``at_least`` of them (the pool's workers)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        children = psutil.Process(process.pid).children(recursive=True)
        if len(children) >= at_least:
            time.sleep(4)  # let them start training
            return psutil.Process(process.pid).children(recursive=True)
        time.sleep(0.2)
    raise AssertionError("the tool started no workers")


def gone(processes, within: float) -> bool:
    _, alive = psutil.wait_procs(processes, timeout=within)
    return not alive


def test_the_first_ctrl_c_cancels_the_queue_and_says_how_to_resume(tmp_path):
    tool = start(tmp_path, jobs=2)
    children = workers_of(tool, at_least=2)
    tool.send_signal(signal.SIGINT)
    out, _ = tool.communicate(timeout=120)
    assert tool.returncode != 0
    last = out.strip().splitlines()[-1]
    assert last.startswith("Interrupted:") and "Run the same command again" in last
    assert "queued run(s) not started" in last
    assert len(list((tmp_path / "cache" / "smoke-runs" / "tme9").glob("*.json"))) < 26
    assert gone(children, within=10)


def test_a_second_ctrl_c_stops_at_once(tmp_path):
    tool = start(tmp_path, jobs=2)
    children = workers_of(tool, at_least=2)
    tool.send_signal(signal.SIGINT)
    time.sleep(0.3)
    tool.send_signal(signal.SIGINT)
    started = time.monotonic()
    out, _ = tool.communicate(timeout=30)
    assert time.monotonic() - started < 10
    assert tool.returncode != 0
    assert gone(children, within=10)


def test_workers_exit_when_the_tool_is_killed(tmp_path):
    tool = start(tmp_path, jobs=2)
    children = workers_of(tool, at_least=2)
    tool.kill()  # kill -9: no handler runs in the tool
    tool.communicate(timeout=30)
    assert gone(children, within=15), [p.pid for p in children if p.is_running()]


def test_one_job_stops_between_two_batches_with_one_line(tmp_path):
    tool = start(tmp_path, jobs=1)
    time.sleep(8)  # loading, then training in the tool's own process
    tool.send_signal(signal.SIGINT)
    out, _ = tool.communicate(timeout=120)
    assert tool.returncode != 0
    assert out.strip().splitlines()[-1].startswith("Interrupted: 1 run(s) stopped")
