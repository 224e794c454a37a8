"""Train the inits of one ablate command in worker processes, started once, while the parent records.

Each worker pins BLAS to one thread and warms it up with a float64 GEMM (provenance) before any
training, as the parent does for a sequential run, so every init gives the same bits as in process.
The workers start before the parent imports MLflow, so that import, opening the runs and logging
the dataset happen while the inits train. Losses come back in chunks as they are computed, so an
interrupted run still has the points trained so far (the job's on_step callbacks).
"""
import contextlib
import multiprocessing
import os
import queue
import signal
import sys
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor

from initstudy.studies.ablate import compute as ablate

from initstudy.record import provenance
from initstudy.run import signals

CHUNK = 50  # losses per progress message (the parent logs each message as it comes)
DIAG_CHUNK = 5  # diagnostics rows per progress message (12 layers x 7 stats each)

_progress = None  # the worker's queue to the parent
_blas = None  # the worker's BLAS thread limit, kept alive for the process


def workers_for(n_tasks: int) -> int:
    return max(1, min(n_tasks, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()))


def training_context():
    """fork where it is safe, else spawn. A forked worker is ready in ~13 ms, a spawned one in ~150
    (measured: a new interpreter imports numpy and initstudy again), and that start is on a run's
    critical path. Safe while this process has no other thread (MLflow's come later; OpenBLAS stops
    its own threads at a fork and restarts them after) and on Linux (macOS's system libraries are
    not fork-safe)."""
    fork = sys.platform == "linux" and threading.active_count() == 1
    return multiprocessing.get_context("fork" if fork else "spawn")


def start_worker():
    """What a computing worker does first (these trainings', a sweep's): Ctrl-C goes to the whole
    group and the parent decides; BLAS pinned to one thread and warmed up, as in a sequential run."""
    global _blas
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _blas = provenance.pin_blas_threads()
    provenance.warm_up_blas()


def _start_worker(progress):
    global _progress
    _progress = progress
    start_worker()


@contextlib.contextmanager
def one_blas_thread_env():
    """A process spawned inside starts its BLAS with one thread (variables of OpenBLAS, OpenMP, MKL).
    Not threadpoolctl's pin: that comes after numpy's import, and numpy's import starts the BLAS's
    threads, which spin for a while at the default priority whatever the process's niceness (nice
    is per thread on Linux). Measured on the figure worker at nice 10, the training's wall minus CPU
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


def _start_figure_worker():
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # its matplotlib import must not take CPU from a training worker (the main thread's niceness: its
    # BLAS has no threads of its own, one_blas_thread_env). Measured, training's wall minus CPU time
    # over 15 runs: 0.06 s median at nice 19, 0.09 at nice 10; it is still ready before a lab run ends.
    os.nice(19)
    from initstudy.record import plots  # matplotlib: ~0.4 s, done while the inits train

    plots.warm_up()


def _train(config, init, ds):
    chunks = {"loss": [], "diag": []}

    def report(kind, size):
        def on(step, value):
            chunks[kind].append((step, value))
            if len(chunks[kind]) >= size:
                _progress.put((init, kind, chunks[kind][:]))
                chunks[kind].clear()
        return on

    result = ablate.train(config, init, ds, on_step=report("loss", CHUNK), on_diag=report("diag", DIAG_CHUNK))
    for kind, chunk in chunks.items():
        if chunk:
            _progress.put((init, kind, chunk))
    return result


signals_held = signals.held  # moved to run/signals.py; the name kept for its callers


class Trainings:
    """`with Trainings(config, ds, names) as t:` starts the trainings; t.results(...) waits for them.
    start: the workers' start method (default training_context())."""

    def __init__(self, config, ds, names, figures=False, start=None):
        self.names = list(names)
        ctx = training_context() if start is None else multiprocessing.get_context(start)
        self.progress = ctx.Queue()
        self._receiving = None  # (callbacks, counts) once results() runs
        # an executor, not multiprocessing.Pool: a worker killed from outside breaks its futures
        # (BrokenProcessPool) instead of losing the task and leaving the parent waiting for ever
        self.pool = ProcessPoolExecutor(workers_for(len(self.names)), mp_context=ctx, initializer=_start_worker,
                                        initargs=(self.progress,))
        self.pending = {n: self.pool.submit(_train, config, n, ds) for n in self.names}
        self.figures, self._figures_ready = None, None
        self._want_figures = figures

    def start_figures(self):
        """figures=True: one more process loads matplotlib and draws what draw() is given, so a run's
        end neither waits for that import nor draws every figure in the parent, one by one.
        Called by the job once its own start (MLflow's import, the runs) is done, not with the
        trainings: started with them, its import made three busy processes on 2 cores and cost the
        training ~0.25 s of its first 100 steps (measured; ~0.02 s when started here). Not started
        when every init has already trained (a short run): the parent draws, at once.
        Spawned: the pool above has a thread by now."""
        if not self._want_figures or self.figures is not None or all(f.done() for f in self.pending.values()):
            return
        self.figures = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"),
                                           initializer=_start_figure_worker)
        with one_blas_thread_env():
            self._figures_ready = self.figures.submit(int)  # starts it (and its import) now

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        # nothing to wait for on success; on an error or a signal, stop the workers now (the executor
        # has no public way to stop a running task: its process table is read here)
        pools = [p for p in (self.pool, self.figures) if p is not None]
        procs = [p for pool in pools for p in (getattr(pool, "_processes", None) or {}).values()]
        for p in procs:
            p.terminate()
        for pool in pools:
            pool.shutdown(wait=False, cancel_futures=True)
        for p in procs:
            p.join(timeout=10)

    def _drain(self, callbacks, counts, timeout):
        # a signal between taking a chunk off the queue and passing it on would lose the chunk
        # (measured: a 100-step gap in a run flushed after Ctrl-C), so it waits for the chunk
        with signals_held():
            try:
                init, kind, chunk = self.progress.get(timeout=timeout)
            except queue.Empty:
                return
            counts[init, kind] += len(chunk)
            f = callbacks[kind].get(init)
            for step, value in chunk if f is not None else ():
                f(step, value)

    def drain(self):
        """Pass on what the workers have already sent, without waiting (before an interrupted run's flush)."""
        if self._receiving is None:
            return
        while not self.progress.empty():
            self._drain(*self._receiving, 0.01)

    def draw(self, fn, *args):
        """fn(*args) as a Future: in the figure worker once it is ready (matplotlib loaded), else here
        and now (its start would take longer than the figure)."""
        if self._figures_ready is not None and self._figures_ready.done():
            return self.figures.submit(fn, *args)
        done = Future()
        done.set_result(fn(*args))
        return done

    def results(self, on_step=None, on_diag=None, idle=None, on_result=None) -> dict:
        """{init: AblateResult} in the order of names; a worker's exception is raised here.
        on_step {init: f(step, loss)} and on_diag {init: f(step, {stat: per-layer array})} see every
        loss and diagnostics row, in order, before this returns; idle() is called between messages;
        on_result(init, result) as each init finishes."""
        callbacks = {"loss": on_step or {}, "diag": on_diag or {}}
        counts = {(n, kind): 0 for n in self.names for kind in callbacks}
        self._receiving = callbacks, counts
        out = {}
        while len(out) < len(self.names):
            self._drain(callbacks, counts, 0.02)
            for n, r in self.pending.items():  # before idle(): on_result may start a figure, idle() logs
                if n not in out and r.done():
                    out[n] = r.result()
                    if on_result is not None:
                        on_result(n, out[n])
            if idle is not None:
                idle()
        computed = {}
        for n, r in out.items():
            computed[n, "loss"] = len(r.losses) if r.steps_to_nan is None else r.steps_to_nan + 1
            computed[n, "diag"] = len(r.diag_steps)
        deadline = time.monotonic() + 30
        while counts != computed and time.monotonic() < deadline:  # the last chunks may still be in the pipe
            self._drain(callbacks, counts, 1.0)
        return {n: out[n] for n in self.names}
