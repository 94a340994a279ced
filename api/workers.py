"""``python -m docchain.api --workers N``: N API processes serving one port, for the cores that one event
loop cannot use (request handling is CPU-bound Python: one process answers on one core at a time).

The workers are replicas on one host, and everything that makes replicas safe holds: they share the
database and the document store, one pipeline works for all (the lease; the other workers' pipelines
stand by and take over if its worker dies), and every worker's long-polls hear the working pipeline's
changes (api/notify.py). What replicas behind a load balancer do not need, the supervisor adds:

* **One port, evenly shared.** Each worker gets its own listening socket bound with ``SO_REUSEPORT``,
  and the kernel spreads new connections across them by hash. A single socket that every worker accepts
  from lets whichever wakes first take a burst of connections (50 keep-alive clients split 34 / 16
  between two workers), and the busier one sets the latency tail.
* **One set of metrics.** Prometheus' multiprocess mode: every process (workers and their pipeline
  children) writes its values to files in a private directory, and ``/metrics`` on any worker sums them.
* **Supervision.** A worker that crashes is started again (after 0.5 s, doubling to 10 s while it keeps
  failing), on the same socket. SIGTERM / SIGINT stop every worker gracefully (each finishes its requests
  and its pipeline's step); the supervisor exits 0 once they have. A worker is also sent SIGTERM by the
  kernel when the supervisor ends, even killed (``PR_SET_PDEATHSIG``), so none is left serving the port.
"""

from __future__ import annotations

import ctypes
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from prometheus_client import multiprocess

log = logging.getLogger("docchain.api.workers")

PR_SET_PDEATHSIG = 1  # linux/prctl.h
STOP_TIMEOUT_S = 15.0  # a worker's graceful stop takes < 5 s: its requests (3 s at most), its pipeline's step (3 s)


def reuseport_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket that other ``SO_REUSEPORT`` sockets of this user may share the port with."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    return sock


def die_with(supervisor: int) -> None:
    """In a worker: be sent SIGTERM (a graceful stop) when the supervisor ends, even killed; exit now if it
    already has."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG)")
    if os.getppid() != supervisor:  # it ended before the line above
        raise SystemExit(1)


_METRICS_PREFIX = "docchain-metrics-"


def _remove_orphaned_metrics() -> None:
    """Metrics directories of supervisors that were killed (SIGKILL leaves no chance to remove them)."""
    base = Path(tempfile.gettempdir())
    for directory in base.glob(f"{_METRICS_PREFIX}*-*"):
        pid = directory.name[len(_METRICS_PREFIX) :].split("-", 1)[0]
        if not pid.isdigit() or directory.stat().st_uid != os.getuid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(directory, ignore_errors=True)
        except PermissionError:  # alive, another user's
            pass


@dataclass
class _Worker:
    index: int
    sock: socket.socket
    proc: subprocess.Popen[bytes] | None = None
    delay: float = 0.5
    started_at: float = 0.0
    restart_at: float | None = None


def received_key(fd: int) -> bytes:
    """In a worker: the relayer's key, as the supervisor wrote it to the pipe ``fd`` (see Supervisor._spawn)."""
    with os.fdopen(fd, "rb") as pipe:
        return bytes.fromhex(pipe.read().decode().strip())


class Supervisor:
    def __init__(self, count: int, host: str, port: int, relayer_key: bytes | None = None) -> None:
        """Binds the workers' sockets (OSError: the port is taken, or the host is not ours). ``relayer_key``:
        the key the supervisor decrypted from a keystore, handed to each worker over a pipe, so that no worker
        runs the keystore's scrypt (~256 MiB and ~1 s each) again; it never goes to disk, an argument or the
        environment."""
        self.host, self.port = host, port
        self.relayer_key = relayer_key
        self.workers: list[_Worker] = []
        try:
            for i in range(count):
                self.workers.append(_Worker(i, reuseport_socket(host, port)))
        except OSError:
            for worker in self.workers:
                worker.sock.close()
            raise
        _remove_orphaned_metrics()
        self.metrics_dir = tempfile.mkdtemp(prefix=f"{_METRICS_PREFIX}{os.getpid()}-")
        self.env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": self.metrics_dir}
        self._stop = threading.Event()

    def _spawn(self, worker: _Worker) -> None:
        fd = worker.sock.fileno()
        command = [sys.executable, "-m", "docchain.api", "--host", self.host, "--port", str(self.port)]
        command += ["--fd", str(fd), "--supervisor", str(os.getpid())]
        key_pipe = os.pipe() if self.relayer_key is not None else None
        if key_pipe is not None:
            command += ["--key-fd", str(key_pipe[0])]
        try:
            worker.proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                pass_fds=(fd,) if key_pipe is None else (fd, key_pipe[0]),
                env=self.env,
            )
            if key_pipe is not None and self.relayer_key is not None:
                os.write(key_pipe[1], self.relayer_key.hex().encode())  # 64 bytes: within the pipe's buffer
        finally:
            if key_pipe is not None:
                os.close(key_pipe[0])
                os.close(key_pipe[1])
        worker.started_at = time.monotonic()
        worker.restart_at = None
        log.info("worker started", extra={"worker": worker.index, "pid": worker.proc.pid})

    def _reap(self, worker: _Worker) -> None:
        proc = worker.proc
        if proc is None or (code := proc.poll()) is None:
            return
        worker.proc = None
        multiprocess.mark_process_dead(proc.pid, self.metrics_dir)  # its open-stream gauge no longer counts
        if self._stop.is_set():
            return
        if code == 0:  # a graceful stop, asked of the worker itself (SIGTERM to the whole process group)
            log.info("worker stopped", extra={"worker": worker.index, "pid": proc.pid})
            return
        if time.monotonic() - worker.started_at > 60:
            worker.delay = 0.5
        log.error("worker exited; restarting", extra={"worker": worker.index, "exit": code, "retry_s": worker.delay})
        worker.restart_at = time.monotonic() + worker.delay
        worker.delay = min(worker.delay * 2, 10.0)

    def run(self) -> int:
        def stop(signum: int, frame: FrameType | None) -> None:
            self._stop.set()

        previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            for worker in self.workers:
                self._spawn(worker)
            while not self._stop.wait(0.1):
                for worker in self.workers:
                    self._reap(worker)
                    if worker.restart_at is not None and time.monotonic() >= worker.restart_at:
                        self._spawn(worker)
                if all(w.proc is None and w.restart_at is None for w in self.workers):
                    break  # every worker stopped gracefully of its own accord
            return self._shutdown()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            for worker in self.workers:
                worker.sock.close()
            shutil.rmtree(self.metrics_dir, ignore_errors=True)

    def _shutdown(self) -> int:
        self._stop.set()
        running = [w.proc for w in self.workers if w.proc is not None]
        for proc in running:
            proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        status = 0
        for proc in running:
            try:
                code = proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                code = proc.wait()
            # -SIGTERM: a worker still starting (importing) has no handler yet, and nothing to finish either
            if code not in (0, -signal.SIGTERM):
                log.error("worker did not stop cleanly", extra={"pid": proc.pid, "exit": code})
                status = 1
        return status
