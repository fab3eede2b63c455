"""A bench run leaves no stack behind on disk (each left ~370 MB of broker and database files)."""

import os
import subprocess
import sys


def test_a_small_bench_run_prints_its_report_and_removes_its_stacks_folder(tmp_path) -> None:
    sizes = ["--orders", "3", "--rate", "50", "--steady-orders", "0", "--replica-orders", "0", "--raw-orders", "0",
             "--intake-orders", "0", "--baseline-messages", "20", "--timeout", "120"]
    done = subprocess.run(
        [sys.executable, "-m", "ordermesh_devstack.bench", *sizes], env={**os.environ, "TMPDIR": str(tmp_path)},
        capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "suite, 3 offered at 50/s" in done.stdout, done.stdout
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("ordermesh-bench-")] == []
