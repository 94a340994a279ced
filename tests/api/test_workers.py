"""The --workers supervisor's housekeeping (api/workers.py); the workers themselves are exercised end to end
in test_pipeline.py (the lease, metrics, restarts) and tests/client/test_up.py (docchain serve)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from docchain.api import workers


def test_a_killed_supervisors_metrics_directory_is_removed_by_the_next_one() -> None:
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(gone.stdout)  # exited: nobody has this pid now (unless reused within the test)
    base = Path(tempfile.gettempdir())
    orphan = Path(tempfile.mkdtemp(prefix=f"docchain-metrics-{dead_pid}-", dir=base))
    (orphan / "counter_123.db").write_bytes(b"\0" * 16)
    alive = Path(tempfile.mkdtemp(prefix=f"docchain-metrics-{os.getpid()}-", dir=base))
    try:
        supervisor = workers.Supervisor(1, "127.0.0.1", 0)
        try:
            assert not orphan.exists()
            assert alive.is_dir()  # its supervisor (this process) still runs
            assert Path(supervisor.metrics_dir).is_dir()
            assert Path(supervisor.metrics_dir).name.startswith(f"docchain-metrics-{os.getpid()}-")
        finally:
            for worker in supervisor.workers:
                worker.sock.close()
            os.rmdir(supervisor.metrics_dir)
    finally:
        for leftover in (orphan, alive):
            if leftover.exists():
                for f in leftover.iterdir():
                    f.unlink()
                leftover.rmdir()
