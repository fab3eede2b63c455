"""The local runtime stops cleanly: SIGTERM to `ordermesh-dev up`, or closing its terminal (SIGHUP), leaves no
java, postgres or service process behind."""

import fcntl
import json
import os
import signal
import subprocess
import sys
import termios
import threading
import time

import select

import psutil
import pytest


def _processes_mentioning(text: str) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        try:
            if any(text in part for part in process.info["cmdline"] or []):
                found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return found


def _become_session_leader_with_its_stdin_as_controlling_terminal() -> None:
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class Terminal:
    """The terminal side of a pseudo-terminal: read (so the suite never blocks writing) until it is closed."""

    def __init__(self) -> None:
        self.fd, self.child_side = os.openpty()
        self._closing = threading.Event()
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        while not self._closing.is_set():
            ready, _, _ = select.select([self.fd], [], [], 0.2)
            if ready:
                try:
                    os.read(self.fd, 65536)
                except OSError:
                    return

    def close(self) -> None:
        """Closes the window: the reader stops first, so that the last reference to the terminal goes."""
        self._closing.set()
        self._reader.join()
        os.close(self.fd)


@pytest.mark.parametrize("stop", ["sigterm", "closed terminal"])
def test_stopping_the_local_suite_stops_kafka_postgres_and_every_service(tmp_path, stop):
    run_dir = tmp_path / "suite"
    env = {k: v for k, v in os.environ.items() if k not in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL")}
    argv = [sys.executable, "-m", "ordermesh_devstack", "--run-dir", str(run_dir), "up"]
    terminal = None
    if stop == "closed terminal":
        terminal = Terminal()
        suite = subprocess.Popen(
            argv, stdin=terminal.child_side, stdout=terminal.child_side, stderr=terminal.child_side, env=env,
            preexec_fn=_become_session_leader_with_its_stdin_as_controlling_terminal,
        )
        os.close(terminal.child_side)
    else:
        suite = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        deadline = time.monotonic() + 300
        while not (run_dir / "stack.json").exists():
            assert suite.poll() is None, "the suite exited before it was ready"
            assert time.monotonic() < deadline, "the suite was not ready in time"
            time.sleep(0.5)
        described = json.loads((run_dir / "stack.json").read_text())
        pids = [*described["pids"].values(), described["kafka_pid"], described["postgres_pid"]]
        assert all(psutil.pid_exists(pid) for pid in pids)
        java = [p for p in _processes_mentioning(str(run_dir)) if "java" in (p.name() or "")]
        assert java, "the broker should be a java process using the run directory"

        if terminal is not None:
            terminal.close()  # the terminal window closes: the kernel hangs up its session
            terminal = None
        else:
            suite.send_signal(signal.SIGTERM)
        assert suite.wait(timeout=120) == 0
        time.sleep(1)
        survivors = [pid for pid in pids if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
        assert survivors == []
        assert _processes_mentioning(str(run_dir)) == []
    finally:
        if terminal is not None:
            terminal.close()
        if suite.poll() is None:
            suite.kill()
