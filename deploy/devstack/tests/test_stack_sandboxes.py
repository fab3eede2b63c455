"""How the local stack starts its sandboxes (their command lines, without starting them)."""

import pytest

from ordermesh_devstack import stack as stack_module
from ordermesh_devstack.stack import LocalStack, StackConfig


@pytest.mark.parametrize("level", ["INFO", "WARNING"])
def test_the_sandboxes_log_at_the_stacks_level(tmp_path, monkeypatch, level: str) -> None:
    started: dict[str, list[str]] = {}
    monkeypatch.setattr(stack_module.ManagedProcess, "start", lambda process: started.setdefault(process.name, process.argv))
    LocalStack(StackConfig(run_dir=tmp_path, log_level=level))._start_sandboxes()
    assert set(started) == {"gateway", "warehouse", "smtp"}
    for argv in started.values():
        assert argv[argv.index("--log-level") + 1] == level.lower()
