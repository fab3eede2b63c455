"""Child-process helpers of the local runtime: free ports, log tails, blocking waits and process-group shutdown."""

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import signal
import socket
import subprocess
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def log_tail(path: Path, lines: int = 40) -> str:
    """The last lines of a log file, for error messages."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log written)"


def run_blocking(coro: Coroutine[Any, Any, None]) -> None:
    """Runs a coroutine to completion from synchronous code, even when an event loop is already running."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(coro)
        return
    # Called from inside an event loop (e.g. an async test): asyncio.run would refuse, so use a thread.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, coro).result()


def stop_process_group(proc: subprocess.Popen, *, first_signal: int, timeout: float, what: str) -> None:
    """Sends `first_signal`, waits up to `timeout`, then SIGKILLs the whole process group so nothing survives."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, first_signal)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            logger.warning("%s (pid %s) did not stop within %.0fs; killing it", what, proc.pid, timeout)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
