"""The bench's count of the CPU the broker, the database server and the sandboxes use: a process with its children."""

import os
import subprocess
import sys
import time

from ordermesh_devstack.bench import tree_cpu


def test_a_process_tree_counts_the_cpu_its_children_use_while_they_live() -> None:
    before = tree_cpu([os.getpid()])
    burner = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass\nsys.stdin.read()"],
        stdin=subprocess.PIPE,
    )
    try:
        used = 0.0
        for _ in range(200):  # bounded: the child burns 0.3 CPU s, then waits for its stdin to close
            used = tree_cpu([os.getpid()]) - before
            if used >= 0.3:
                break
            time.sleep(0.05)
        assert used >= 0.3
    finally:
        burner.stdin.close()
        burner.wait(timeout=10)


def test_a_process_that_is_gone_counts_nothing() -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    assert tree_cpu([gone.pid]) == 0.0
