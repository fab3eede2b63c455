"""Running the staff CLI (`ordermesh`) as staff would, against the running suite."""

import os
import subprocess
import sys
from pathlib import Path

from ordermesh_devstack.stack import SERVICES


def cli(stack, *args: str) -> subprocess.CompletedProcess:
    """Runs `ordermesh <args>` pointed at the suite; returns the finished process (text output)."""
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": stack.bootstrap,
        "ORDERMESH_API_TOKEN": stack.api_token,
        **{f"ORDERMESH_{name.upper()}_URL": f"http://127.0.0.1:{stack.processes[name].http_port}" for name in SERVICES},
        "COLUMNS": "200",
    }
    ordermesh = Path(sys.executable).with_name("ordermesh")
    return subprocess.run([str(ordermesh), *args], env=env, capture_output=True, text=True, timeout=90, cwd="/")
