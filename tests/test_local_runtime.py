"""The local runtime stops cleanly: SIGTERM to `ordermesh-dev up` leaves no java, postgres or service process behind."""

import json
import os
import signal
import subprocess
import sys
import time

import psutil


def _processes_mentioning(text: str) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        try:
            if any(text in part for part in process.info["cmdline"] or []):
                found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return found


def test_sigterm_to_the_local_suite_stops_kafka_postgres_and_every_service(tmp_path):
    run_dir = tmp_path / "suite"
    suite = subprocess.Popen(
        [sys.executable, "-m", "ordermesh_devstack", "--run-dir", str(run_dir), "up"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={k: v for k, v in os.environ.items() if k not in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL")},
    )
    try:
        deadline = time.monotonic() + 180
        while not (run_dir / "stack.json").exists():
            assert suite.poll() is None, "the suite exited before it was ready"
            assert time.monotonic() < deadline, "the suite was not ready in time"
            time.sleep(0.5)
        described = json.loads((run_dir / "stack.json").read_text())
        pids = [*described["pids"].values(), described["kafka_pid"], described["postgres_pid"]]
        assert all(psutil.pid_exists(pid) for pid in pids)
        java = [p for p in _processes_mentioning(str(run_dir)) if "java" in (p.name() or "")]
        assert java, "the broker should be a java process using the run directory"

        suite.send_signal(signal.SIGTERM)
        assert suite.wait(timeout=90) == 0
        time.sleep(1)
        survivors = [pid for pid in pids if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
        assert survivors == []
        assert _processes_mentioning(str(run_dir)) == []
    finally:
        if suite.poll() is None:
            suite.kill()
