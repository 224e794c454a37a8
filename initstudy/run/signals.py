"""Signals, and the process that owns a run.

- held(): Ctrl-C and SIGTERM wait until a store write is done (one raised inside MLflow's session
  breaks the request, and the command then blames the store).
- end_with_launcher(): this command ends (SIGTERM, runs closed KILLED) when the `mlflow run` that
  launched it does; the kernel's parent-death signal, so no thread of ours.
- owner_tags() / owner_state(): the host, PID and start time of the process holding a run RUNNING,
  so a run whose owner is gone can be told from one that still computes.
"""
import contextlib
import os
import signal
import socket

OWNER_TAGS = ("initstudy.owner.host", "initstudy.owner.pid", "initstudy.owner.started")
PR_SET_PDEATHSIG = 1  # linux/prctl.h


@contextlib.contextmanager
def held(sigs=(signal.SIGINT, signal.SIGTERM)):
    """Ctrl-C and SIGTERM wait until the block is done, then arrive: for a step that must not be cut
    in two (a chunk taken off the workers' queue and passed on, a batch written to the store)."""
    got = []
    handlers = {sig: signal.signal(sig, lambda signum, frame: got.append(signum)) for sig in sigs}
    try:
        yield
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        if got:
            signal.raise_signal(got[0])  # now, with the caller's handlers back


def end_with_launcher() -> bool:
    """Ask the kernel for SIGTERM when our `mlflow run` parent dies (Linux). True if set."""
    import ctypes
    import sys

    from initstudy.record import tracking

    parent = tracking.launcher_process()
    if sys.platform != "linux" or parent is None or parent.pid != os.getppid():
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        return False
    if os.getppid() != parent.pid:  # it died before the request: the signal will never come
        os.kill(os.getpid(), signal.SIGTERM)
    return True


def stop_waiting_launcher():
    """After a lost tracking server, `mlflow run` would retry marking its run for about 4 minutes (its
    defaults: 7 retries, 2 s backoff doubling, 120 s timeout; measured 248 s). Unless the user set
    MLFLOW_HTTP_REQUEST_MAX_RETRIES or _TIMEOUT where it runs, it is stopped now: the command ends in seconds."""
    from initstudy.record import tracking

    proc = tracking.launcher_process()
    try:
        if proc is None or {"MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT"} & set(proc.environ()):
            return
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # its end sends us the parent-death signal
        proc.terminate()
    except Exception:  # gone already, or not ours to signal
        pass


def owner_tags() -> dict:
    import psutil

    return dict(zip(OWNER_TAGS, (socket.gethostname(), os.getpid(), f"{psutil.Process().create_time():.3f}")))


def owner_state(tags: dict) -> str:
    """'alive' (its owner still runs here), 'gone' (its owner was on this host and is not running),
    'elsewhere' (another host: cannot be known from here) or 'unknown' (no owner recorded)."""
    import psutil

    host, pid, started = (tags.get(k) for k in OWNER_TAGS)
    if not host or not pid:
        return "unknown"
    if host != socket.gethostname():
        return "elsewhere"
    try:
        same = abs(psutil.Process(int(pid)).create_time() - float(started or 0)) < 0.01
    except (psutil.Error, ValueError):
        return "gone"
    return "alive" if same else "gone"


def describe_owner(tags: dict) -> str:
    host, pid, _ = (tags.get(k) for k in OWNER_TAGS)
    return f"pid {pid} on {host}" if host else "an unrecorded process"
