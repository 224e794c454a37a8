"""Where a sweep computes: Dask distributed, on a LocalCluster or a running cluster. The only module
that imports Dask.

    with Engine(workers=2) as engine:                       # LocalCluster on 127.0.0.1, shut down at exit
    with Engine(scheduler="tls://host:8786", security=...): # a cluster started with `dask scheduler/worker`
        for i, result, error in engine.map(fn, [args, ...]): ...   # in completion order (as_completed)

        stream = engine.stream(fn, [args, ...])    # fn(*args, send): stream.inbox gets its messages as it computes

Workers get a function and plain arguments and return plain results; every worker starts the same
way (start_worker: BLAS pinned to one thread, warmed up) before computing, so a task gives the bits
it gives in process. map() submits at most as many tasks as the cluster has threads, so no task waits
queued on a worker behind another: a worker that dies takes only the task it was running, which the
scheduler then runs elsewhere, up to ALLOWED_FAILURES times more.

Speed settings (each measured on the 2-core machine; the bench is scripts/bench.py):
- LocalCluster workers are forked on Linux (FORK: ~0.45 s against ~3.7 s for a cluster of 2).
- A worker's start reads nothing it does not compute with: the machine's description (psutil's import
  and its reads, ~40 ms) is read on a sweep's first task (studies.machine), never for ablate's inits.
- Dask's own sampling is off or slowed (QUIET): a worker's event loop took 5.8 % of a training's CPU
  beside it, 2.5 % with QUIET (see QUIET).
"""
import contextlib
import importlib.util
import logging
import os
import queue
import signal
import sys
import time
import uuid

# Dask's loggers are off, not at CRITICAL: the scheduler logs a traceback at CRITICAL when it writes to a
# client that is closing (seen once in CI: a run ending on a lost tracking server printed one).
SILENT = logging.CRITICAL + 1
ALLOWED_FAILURES = 2  # a task whose worker dies is tried 1 + 2 times, then fails (distributed's KilledWorker)
CONNECT_TIMEOUT = 10  # s to reach a scheduler: the command says so within 15 s
WORKER_TIMEOUT = 30  # s for a running scheduler to have at least one worker


# Forked workers inherit the imported numpy and initstudy instead of importing them again: a LocalCluster
# of 2 workers started in 0.41-0.49 s forked against 3.7-4.0 s spawned (3.2 s forkserver), measured at
# load 8-10 on the 2 cores (scratch script, median of 2 each). Linux only: macOS's system libraries are
# not fork-safe. The fork happens on distributed's event-loop thread while the caller waits; the
# parent has imported no MLflow yet (sweep.run and the ablate job start the engine first).
FORK = sys.platform == "linux"

_blas_limit = []  # this worker's BLAS thread limit, kept alive for the process
_at_fork = []  # the fork hook below, registered once per process


def _forked_worker_signals():
    """A forked worker's signals, as a spawned one's: SIGTERM ends it (the parent's handler would raise
    inside its event loop and print a traceback), Ctrl-C is ignored (the parent stops it). Also for a
    worker the nanny forks again after a crash, when the parent's handlers are the run's."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def start_worker():
    """What every worker does once, before its first task (the PinBlas plugin): BLAS pinned to one
    thread and warmed up with a float64 GEMM (record/provenance), as a run alone does in process,
    so every task gives the bits it gives there. Ctrl-C is ignored already (Engine.__enter__)."""
    from initstudy.record import provenance

    if not _blas_limit:
        _blas_limit.append(provenance.pin_blas_threads())
        provenance.warm_up_blas()


def workers_for(n_tasks: int) -> int:
    """As many workers as tasks, at most one per core this process may use."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(n_tasks, cores))


@contextlib.contextmanager
def one_blas_thread_env():
    """A process started inside starts its BLAS with one thread (variables of OpenBLAS, OpenMP, MKL).
    Not threadpoolctl's pin: that comes after numpy's import, and numpy's import starts the BLAS's
    threads, which spin for a while at the default priority whatever the process's niceness (nice
    is per thread on Linux). Measured on a spawned figure worker at nice 10, the training's wall minus CPU
    time over a recorded lab run: 0.08-0.34 s (median 0.13), 0.03-0.12 s (median 0.09) with one thread."""
    names = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
    before = {n: os.environ.get(n) for n in names}
    os.environ.update(dict.fromkeys(names, "1"))
    try:
        yield
    finally:
        for n, v in before.items():
            if v is None:
                os.environ.pop(n, None)
            else:
                os.environ[n] = v


def _streamed(fn, topic, *args):
    """A task of Engine.stream, on its worker: fn(*args, send), each message sent as the worker's event."""
    from distributed import get_worker

    worker = get_worker()
    return fn(*args, lambda msg: worker.log_event(topic, msg))


def _key(fn, run: str, i: int) -> str:
    """Task i's key in one map or stream (the dashboard shows the function's name)."""
    return f"{getattr(fn, '__name__', 'task')}-{run}-{i}"


class Stream:
    """Engine.stream's tasks, submitted as threads free up, as map() does. Submitted all at once (3
    tasks of 0.2, 3 and 0.2 s on 2 workers, 6 rounds), the third was once placed behind the long one
    and started 1.5 s late, when the scheduler stole it back; handed out this way it starts at once."""

    def __init__(self, engine, fn, tasks: list):
        self.engine, self.fn, self.tasks = engine, fn, list(tasks)
        self.topic, self.inbox = f"initstudy-stream-{uuid.uuid4().hex[:8]}", queue.Queue()
        engine.client.subscribe_topic(self.topic, lambda event: self.inbox.put(event[1]))  # before the tasks
        self.futures = [None] * len(self.tasks)  # a Future once submitted
        self.slots = engine.threads()
        self.refill()

    def refill(self):
        """Submit waiting tasks while fewer than the cluster's threads are running."""
        running = sum(f is not None and not f.done() for f in self.futures)
        for i, f in enumerate(self.futures):
            if f is None and running < self.slots:
                self.futures[i] = self.engine.client.submit(
                    _streamed, self.fn, self.topic, *self.tasks[i], pure=False,
                    key=_key(self.fn, self.topic, i))
                running += 1

    def done(self) -> bool:
        return all(f is not None and f.done() for f in self.futures)


def worker_address() -> str:
    """Inside a task: the address of the worker running it (for Engine.submit's near=)."""
    from distributed import get_worker

    return get_worker().address


class EngineError(Exception):
    """The cluster cannot be used (unreachable, no worker): one line, exit 1, no run opened."""


def security(ca_file: str = "", cert: str = "", key: str = ""):
    """Dask's TLS settings: these files if given, else Dask's own config (DASK_DISTRIBUTED__COMM__TLS__*)."""
    from distributed.security import Security

    if ca_file or cert or key:
        return Security(tls_ca_file=ca_file or None, tls_client_cert=cert or None, tls_client_key=key or None,
                        require_encryption=True)
    return Security()


# What a worker's event loop samples while a task computes, for a dashboard we do not show: the profiler's
# stack sample every 10 ms, the system and memory monitors' psutil reads every 0.5 s and 0.1 s, the tick
# every 20 ms. Measured on a 600-step ablate training alone in a worker (2 rounds, quiet machine): the
# worker's other threads took 0.20-0.22 s of CPU beside the task's 3.4-3.7 s, 0.09 s with these.
QUIET = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.system-monitor.interval": "10s",
    "distributed.worker.memory.monitor-interval": "10s",
    "distributed.admin.tick.interval": "1s",
}


def _config():
    import dask

    return dask.config.set({
        **QUIET,
        "distributed.worker.multiprocessing-method": "fork" if FORK else "spawn",
        "distributed.scheduler.allowed-failures": ALLOWED_FAILURES,  # a LocalCluster's scheduler (ours)
        "distributed.comm.timeouts.connect": f"{CONNECT_TIMEOUT}s",
        "distributed.admin.tick.limit": "1h",  # a long training holds the GIL: no event-loop warnings
        "logging.distributed": "error",
    })


class PinBlas:
    """Worker plugin: start_worker() before the worker's first task."""
    name = "initstudy-pin-blas"

    def setup(self, worker):
        start_worker()


class Engine:
    def __init__(self, workers: int = 2, scheduler: str = "", security=None):
        self.workers, self.scheduler, self.security = workers, scheduler, security
        self.cluster = self.client = None
        self.startup_seconds = None

    def __enter__(self):
        if self.client is not None:  # started already: one cluster per engine, however often entered
            return self
        from distributed import Client, LocalCluster
        from distributed.diagnostics.plugin import WorkerPlugin

        t0 = time.perf_counter()
        self._cfg = _config()
        self._cfg.__enter__()
        for name in ("distributed", "distributed.client"):  # a failure is ours to report, in one line
            logging.getLogger(name).setLevel(SILENT)
        try:
            if self.scheduler:
                try:
                    self.client = Client(self.scheduler, timeout=CONNECT_TIMEOUT, security=self.security,
                                         set_as_default=False)
                except (OSError, TimeoutError, ValueError) as e:
                    why = "timed out" if "timed out" in str(e).lower() else str(e).splitlines()[0][:200]
                    raise EngineError(f"Dask scheduler {self.scheduler} unreachable ({why}); start it "
                                      "(`dask scheduler`) or fix scheduler= / DASK_SCHEDULER_ADDRESS") from None
                try:
                    self.client.wait_for_workers(1, timeout=WORKER_TIMEOUT)
                except (OSError, TimeoutError):
                    raise EngineError(f"Dask scheduler {self.scheduler} has no worker after {WORKER_TIMEOUT} s; "
                                      f"start one: dask worker {self.scheduler} --nthreads 1") from None
            else:
                # workers start with one BLAS thread and ignore Ctrl-C (the parent stops them); both inherited
                if FORK and not _at_fork:
                    os.register_at_fork(after_in_child=_forked_worker_signals)
                    _at_fork.append(True)
                old = signal.signal(signal.SIGINT, signal.SIG_IGN)
                try:
                    with one_blas_thread_env():
                        self.cluster = LocalCluster(
                            n_workers=self.workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                            dashboard_address="127.0.0.1:0",  # the HTTP server (and dashboard, with bokeh) local too
                            silence_logs=SILENT)  # their shutdown chatter on SIGTERM is not ours to show
                finally:
                    signal.signal(signal.SIGINT, old)
                self.client = Client(self.cluster, set_as_default=False)
            plugin = type("PinBlasPlugin", (PinBlas, WorkerPlugin), {})()
            self.client.register_plugin(plugin, name=PinBlas.name)
        except BaseException:
            self.close()
            raise
        self.startup_seconds = time.perf_counter() - t0
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        """Cancel what is pending, disconnect, and shut a LocalCluster down (its processes end)."""
        with contextlib.suppress(Exception):
            if self.client is not None:
                self.client.close(timeout=10)
        with contextlib.suppress(Exception):
            if self.cluster is not None:
                self.cluster.close(timeout=20)
        self.client = self.cluster = None
        if getattr(self, "_cfg", None) is not None:
            self._cfg.__exit__(None, None, None)
            self._cfg = None

    def where(self) -> str:
        """One line: where tasks run, and the dashboard when there is one."""
        n = self.threads()
        what = (f"a LocalCluster of {self.workers} worker processes on 127.0.0.1" if self.cluster
                else f"the Dask cluster at {self.scheduler} ({n} worker threads)")
        link = self.client.dashboard_link if importlib.util.find_spec("bokeh") else None
        return what + (f"; dashboard {link}" if link else "")

    def threads(self) -> int:
        return max(1, sum(self.client.nthreads().values()))

    def map(self, fn, tasks: list):
        """Submit now (the workers start while the caller opens its runs); an iterator of (index,
        result, error line or None) in completion order, at most `threads()` tasks in flight."""
        from distributed import as_completed

        todo, index, run = list(enumerate(tasks)), {}, uuid.uuid4().hex[:8]
        pending = set()

        def submit():
            i, args = todo.pop(0)
            f = self.client.submit(fn, *args, key=_key(fn, run, i), pure=False)
            index[f.key] = i
            pending.add(f)
            return f

        ac = as_completed([submit() for _ in range(min(self.threads(), len(todo)))], loop=self.client.loop)
        return self._arrivals(ac, submit, todo, index, pending)

    def stream(self, fn, tasks: list) -> "Stream":
        """fn(*args, send) for each args, at most threads() at a time (Stream.refill submits the rest);
        every msg a task passes to send(msg) (msgpack-able: lists, dicts, numbers, strings) arrives on
        the Stream's queue.Queue inbox, in the order that task sent them, before its future is done."""
        return Stream(self, fn, tasks)

    def submit(self, fn, *args, near: str | None = None):
        """fn(*args) on a worker, now: a future (its .result() waits). near: a worker's address
        (worker_address()) to run it on while that worker is there, else any."""
        where = {"workers": [near], "allow_other_workers": True} if near else {}
        return self.client.submit(fn, *args, pure=False, **where)

    def lost(self) -> EngineError:
        """The one line for a scheduler that went away mid-sweep (SIGKILL, a lost machine)."""
        return EngineError(f"Dask scheduler {self.scheduler or 'of the LocalCluster'} lost (its connection closed)")

    def _arrivals(self, ac, submit, todo, index, pending):
        from distributed.comm import CommClosedError
        from distributed.scheduler import KilledWorker

        try:
            for f in ac:
                pending.discard(f)
                while todo and len(pending) < self.threads():  # keep every worker busy first
                    ac.add(submit())
                i = index.pop(f.key)
                if f.status == "finished":
                    yield i, f.result(), None
                elif f.status == "cancelled" or self.client.status != "running":  # the scheduler forgot it
                    raise self.lost()
                else:
                    e = f.exception()
                    yield i, None, (f"its worker died {ALLOWED_FAILURES + 1} times (distributed's allowed-failures "
                                    f"{ALLOWED_FAILURES})" if isinstance(e, KilledWorker) else
                                    f"{type(e).__name__}: {e}")
                f.release()
        except (CommClosedError, OSError, TimeoutError):
            raise self.lost() from None
        finally:
            for f in pending:
                try:
                    f.cancel()
                except Exception:  # the client already closed (an interrupt, a lost scheduler)
                    pass
