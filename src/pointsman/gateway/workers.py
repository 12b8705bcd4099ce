"""``pointsman serve --workers N``: N gateway processes on one port, and their supervisor.

Every worker is a whole gateway (``pointsman serve`` as one process runs it, drain and
exit status included). The supervisor binds one listening socket per worker on the same
port with ``SO_REUSEPORT`` (the kernel spreads new connections over them; one shared
socket where the option is missing) and keeps them all open, forks the workers (each
serves its own socket), and then only waits:

- a worker that dies (killed, crashed) is replaced on the same socket (connections the
  kernel queued on it wait for the new one); its budget holds lapse within
  ``budgets.lease_s`` (:mod:`pointsman.budget.leases`). Workers that keep dying within
  ``CRASH_WINDOW_S`` of their start (a broken config, a port problem) stop the server
  after ``MAX_QUICK_DEATHS`` in a row, exit status 1; a worker that cannot build its
  gateway (a config error, status 2) stops the server at once, exit status 2;
- SIGHUP is passed to every worker: each reloads the config file (gateway/reload.py).
- SIGTERM or SIGINT is passed to every worker, each drains its requests, and the
  supervisor exits with 3 when any worker had to interrupt requests (``gateway.drain``),
  else with the highest status a worker exited with.

What the workers share (no Redis needed): the budget ledger (SQLite, or Redis), the
request log (one SQLite file in WAL mode, each worker writing its own batches; record ids
are unique per process, inserts ignore replays), deployment health and cooldowns
(:mod:`pointsman.health_local` in the run directory, unless ``gateway.health.store`` is
redis), and Prometheus metrics (prometheus_client's multiprocess mode: ``/metrics`` on any
worker shows the whole server). Latency windows and bandit statistics stay per worker
unless ``latency.store`` is redis: each worker sees an unbiased share of the traffic, so
its percentiles estimate the same distribution; the bandit learns from its share.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from pointsman.errors import ConfigError, PointsmanError

if TYPE_CHECKING:
    from pointsman.config import PointsmanConfig

RUN_DIR_ENV = "POINTSMAN_RUN_DIR"
METRICS_ENV = "PROMETHEUS_MULTIPROC_DIR"
CRASH_WINDOW_S = 10.0
MAX_QUICK_DEATHS = 5
INTERRUPTED_EXIT = 3
CONFIG_EXIT = 2


def run_dir() -> Path | None:
    """The directory the workers of this server share, or None (one process)."""
    found = os.environ.get(RUN_DIR_ENV)
    return Path(found) if found else None


def default_workers() -> int:
    """The cores this process may run on (``taskset`` and cgroup cpusets respected)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def resolve_workers(asked: int | None, cfg: PointsmanConfig) -> tuple[int, str | None]:
    """(the number of workers, a note when the default had to be 1). ``--workers`` wins
    over ``gateway.workers``; neither set: the number of cores. A budget ledger in one
    process's memory cannot be shared: asked for, several workers are refused then;
    by default the server runs one."""
    count = asked if asked is not None else cfg.gateway.workers
    unshared = _unshareable(cfg)
    if count is not None:
        if count > 1 and unshared:
            raise ConfigError(f"--workers {count}: {unshared}; use one worker, or "
                              "budgets.store sqlite or redis")
        return count, None
    if unshared:
        return 1, f"one worker: {unshared}"
    return default_workers(), None


def _unshareable(cfg: PointsmanConfig) -> str | None:
    from pointsman.budget.factory import budgets_configured

    if cfg.budgets.store == "memory" and budgets_configured(cfg.budgets):
        return "budgets.store is memory (one process's ledger)"
    return None


def bind_all(host: str, port: int, count: int,
             bind: Callable[[str, int, bool], socket.socket]) -> list[socket.socket]:
    """One listening socket per worker on one port (``SO_REUSEPORT``), or one shared."""
    reuse = hasattr(socket, "SO_REUSEPORT")
    first = bind(host, port, reuse)
    if not reuse:
        return [first] * count
    port = first.getsockname()[1]
    socks = [first]
    try:
        for _ in range(count - 1):
            socks.append(bind(host, port, reuse))
    except ConfigError:
        for sock in socks:
            sock.close()
        raise
    return socks


class Supervisor:
    """Forks the workers, replaces those that die, passes on SIGTERM and reports."""

    def __init__(self, socks: list[socket.socket],
                 serve_one: Callable[[socket.socket, bool], int]) -> None:
        self.socks = socks
        self.serve_one = serve_one
        self.pids: dict[int, tuple[int, float]] = {}  # pid → (slot, started at)
        self.stopping = False
        self.statuses: list[int] = []
        self.quick_deaths = 0

    def run(self) -> int:
        """Serve until a signal stops every worker; the exit status (see the module)."""
        watched = {signal.SIGTERM, signal.SIGINT, signal.SIGCHLD, signal.SIGHUP}
        signal.pthread_sigmask(signal.SIG_BLOCK, watched)
        try:
            for slot in range(len(self.socks)):
                self._start(slot)
            while self.pids:
                info = signal.sigtimedwait(watched, 1.0)
                if info is not None and info.si_signo == signal.SIGHUP:
                    self._tell(signal.SIGHUP)  # every worker reloads its config
                elif info is not None and info.si_signo != signal.SIGCHLD:
                    self._stop()
                self._reap()
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, watched)
        return self._status()

    def _start(self, slot: int) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # the worker
            os._exit(self._child(slot, parent))
        self.pids[pid] = (slot, time.monotonic())

    def _child(self, slot: int, parent: int) -> int:
        status = 1
        try:
            # a Ctrl-C reaches the supervisor alone, which passes one SIGTERM on
            os.setpgid(0, 0)
            _die_with(parent)
            signal.pthread_sigmask(signal.SIG_SETMASK, set())
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
                signal.signal(sig, signal.SIG_DFL)
            # a reload asked for while this worker still starts must not kill it (SIGHUP's
            # default); the worker's own handler takes over once its gateway is built
            signal.signal(signal.SIGHUP, signal.SIG_IGN)
            mine = self.socks[slot]
            for sock in self.socks:
                if sock is not mine:
                    sock.close()
            status = self.serve_one(mine, slot == 0)
        except SystemExit as exc:
            status = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except PointsmanError as exc:  # as the CLI says it: one line, status 2
            sys.stderr.write(f"pointsman: error: {exc.message}\n")
            status = CONFIG_EXIT
        except BaseException as exc:  # the worker's last word, then exit
            sys.stderr.write(f"pointsman: worker {slot} failed: {type(exc).__name__}: {exc}\n")
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
        return status

    def _reap(self) -> None:
        while self.pids:
            try:
                pid, wait_status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                self.pids.clear()
                return
            if pid == 0:
                return
            slot, started = self.pids.pop(pid, (-1, 0.0))
            if slot < 0:
                continue
            status = os.waitstatus_to_exitcode(wait_status)
            if self.stopping:
                self.statuses.append(status)
            elif status == CONFIG_EXIT:  # a config error: every new worker would fail too
                self.statuses.append(status)
                self._stop()
            else:
                self._replace(slot, pid, status, started)

    def _replace(self, slot: int, pid: int, status: int, started: float) -> None:
        how = f"signal {-status}" if status < 0 else f"status {status}"
        quick = time.monotonic() - started < CRASH_WINDOW_S
        self.quick_deaths = self.quick_deaths + 1 if quick else 0
        if self.quick_deaths >= MAX_QUICK_DEATHS:
            sys.stderr.write(f"pointsman: worker {slot} (pid {pid}) exited ({how}); "
                             f"{MAX_QUICK_DEATHS} workers died within {CRASH_WINDOW_S:g} s "
                             "of their start: stopping\n")
            self.statuses.append(1)
            self._stop()
            return
        sys.stderr.write(f"pointsman: worker {slot} (pid {pid}) exited ({how}); "
                         "starting another\n")
        self._start(slot)

    def _stop(self) -> None:
        """Tell every worker to drain (a second signal makes uvicorn stop at once)."""
        self.stopping = True
        self._tell(signal.SIGTERM)

    def _tell(self, sig: int) -> None:
        for pid in list(self.pids):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    def _status(self) -> int:
        worst = max((s if s >= 0 else 1 for s in self.statuses), default=0)
        for special in (INTERRUPTED_EXIT, CONFIG_EXIT):
            if special in self.statuses:
                worst = special
        sys.stdout.write(f"pointsman: {len(self.statuses)} workers stopped "
                         f"(exit status {worst})\n")
        sys.stdout.flush()
        return worst


def _die_with(parent: int) -> None:
    """A worker whose supervisor dies (SIGKILL) is sent SIGTERM and drains (Linux's
    parent-death signal), rather than serving on unsupervised."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: nothing to ask for
        return
    if os.getppid() != parent:  # it died before we asked
        os.kill(os.getpid(), signal.SIGTERM)


class RunDir:
    """The server's shared run directory (health file, metrics files), set in the
    environment before anything imports prometheus_client, removed at exit."""

    def __init__(self) -> None:
        self.path = Path(tempfile.mkdtemp(prefix="pointsman-run-"))

    def __enter__(self) -> Path:
        metrics = self.path / "metrics"
        metrics.mkdir()
        os.environ[RUN_DIR_ENV] = str(self.path)
        os.environ[METRICS_ENV] = str(metrics)
        if "prometheus_client" in sys.modules:  # values already bound to memory
            raise RuntimeError("prometheus_client was imported before the run directory")
        return self.path

    def __exit__(self, *exc: object) -> None:
        os.environ.pop(RUN_DIR_ENV, None)
        os.environ.pop(METRICS_ENV, None)
        shutil.rmtree(self.path, ignore_errors=True)
