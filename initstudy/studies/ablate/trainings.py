"""Train the inits of one ablate command on the engine (run/engine.py, a LocalCluster) while the parent records.

The cluster starts before the parent imports MLflow, so that import, opening the runs and logging
the dataset happen while the inits train. Each worker starts as every engine worker does (BLAS pinned
to one thread, warmed up), so every init gives the bits of a sequential run. Losses and diagnostics
come back in chunks as they are computed (Engine.stream), so an interrupted run still has the points
trained so far (the job's on_step callbacks).
"""
import queue
import time

from initstudy.run import engine as engine_mod
from initstudy.run import signals
from initstudy.studies.ablate import compute as ablate

CHUNK = 50  # losses per message (the parent logs each message as it comes)
DIAG_CHUNK = 5  # diagnostics rows per message (12 layers x 7 stats each)


def _plain(value):
    """A loss or a diagnostics row as msgpack carries it: floats (exact: float64 holds a float32)."""
    return {k: [float(x) for x in v] for k, v in value.items()} if isinstance(value, dict) else float(value)


def train(config, init, ds, send):
    """One init's training, on a worker: ablate.train, its points sent in chunks as they are computed."""
    chunks = {"loss": [], "diag": []}

    def report(kind, size):
        def on(step, value):
            chunks[kind].append((int(step), _plain(value)))
            if len(chunks[kind]) >= size:
                send([init, kind, chunks[kind][:]])
                chunks[kind].clear()
        return on

    result = ablate.train(config, init, ds, on_step=report("loss", CHUNK), on_diag=report("diag", DIAG_CHUNK))
    for kind, chunk in chunks.items():
        if chunk:
            send([init, kind, chunk])
    return result


def _warm_figures() -> str:
    """On a worker: matplotlib imported and its first figure drawn (plots.warm_up); the worker's address."""
    from initstudy.record import plots

    plots.warm_up()
    return engine_mod.worker_address()


class Trainings:
    """`with Trainings(config, ds, names) as t:` starts a LocalCluster (one worker per init, at most one
    per core) and the trainings; t.results(...) waits for them; leaving the block shuts the cluster down.
    figures=True: one worker more where a core is left, to draw figures (warm_figures, draw)."""

    def __init__(self, config, ds, names, workers: int | None = None, figures: bool = False):
        self.names = list(names)
        n = workers or engine_mod.workers_for(len(self.names) + figures)
        self.engine = engine_mod.Engine(n).__enter__()
        self.spare = n > len(self.names)  # a worker no training needs
        self._figures = None  # future of _warm_figures: the warm worker's address
        try:
            self.stream = self.engine.stream(train, [(config, n, ds) for n in self.names])
        except BaseException:
            self.engine.close()
            raise
        self._receiving = None  # (callbacks, seen) once results() runs

    @property
    def pending(self) -> dict:
        """{init: its Future}, of the inits submitted so far (at most one per worker at a time)."""
        return {n: f for n, f in zip(self.names, self.stream.futures) if f is not None}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.engine.close()  # on an error or a signal too: the workers stop now

    def _drain(self, callbacks, seen, timeout):
        # a signal between taking a chunk off the queue and passing it on would lose the chunk
        # (measured: a 100-step gap in a run flushed after Ctrl-C), so it waits for the chunk
        with signals.held():
            try:
                init, kind, chunk = self.stream.inbox.get(timeout=timeout)
            except queue.Empty:
                return
            f = callbacks[kind].get(init)
            for step, value in chunk:
                if step > seen[init, kind]:  # a task retried after its worker died sends its points again
                    seen[init, kind] = step
                    if f is not None:
                        f(step, value)

    def drain(self):
        """Pass on what the workers have already sent, without waiting (before an interrupted run's flush)."""
        if self._receiving is None:
            return
        while not self.stream.inbox.empty():
            self._drain(*self._receiving, 0.01)

    def warm_figures(self):
        """The spare worker loads matplotlib now, so a run's figures need not wait for that import after
        its last step (~0.5 s measured on a one-init run's critical path). Called once the parent's own
        start (MLflow's import) is done: three busy processes on 2 cores slow the training. The future of
        the warm worker's address, or None (no spare worker, or nothing left to train)."""
        if self.spare and self._figures is None and not self.stream.done():
            self._figures = self.engine.submit(_warm_figures)
        return self._figures

    def draw(self, fn, *args):
        """fn(*args) on a worker (matplotlib loads there, not in the parent's way), the warm one if
        there is one: a future."""
        warm = self._figures
        near = warm.result() if warm is not None and warm.done() and warm.status == "finished" else None
        return self.engine.submit(fn, *args, near=near)

    def results(self, on_step=None, on_diag=None, idle=None, on_result=None) -> dict:
        """{init: AblateResult} in the order of names; a worker's exception is raised here.
        on_step {init: f(step, loss)} and on_diag {init: f(step, {stat: per-layer values})} see every
        loss and diagnostics row, in order, before this returns; idle() is called between messages;
        on_result(init, result) as each init finishes."""
        callbacks = {"loss": on_step or {}, "diag": on_diag or {}}
        seen = {(n, kind): -1 for n in self.names for kind in callbacks}
        self._receiving = callbacks, seen
        out = {}
        while len(out) < len(self.names):
            self._drain(callbacks, seen, 0.02)
            pending = self.pending
            done = [n for n, f in pending.items() if n not in out and f.done()]
            for n in done:
                out[n] = pending[n].result()
            self.stream.refill()  # the next init takes the freed worker before any figure does
            for n in done:  # before idle(): on_result may start a figure, idle() logs
                if on_result is not None:
                    on_result(n, out[n])
            if idle is not None:
                idle()
        last = {}
        for n, r in out.items():
            last[n, "loss"] = (len(r.losses) if r.steps_to_nan is None else r.steps_to_nan + 1) - 1
            last[n, "diag"] = int(r.diag_steps[-1]) if len(r.diag_steps) else -1
        deadline = time.monotonic() + 30
        while any(seen[k] < v for k, v in last.items()) and time.monotonic() < deadline:  # the last chunks may still be on their way
            self._drain(callbacks, seen, 1.0)
        return {n: out[n] for n in self.names}
