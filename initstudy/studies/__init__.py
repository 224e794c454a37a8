"""The studies a sweep can run, and the task a sweep worker runs: config in, result out.

A study plugs into `sweep` with one entry in STUDIES: its config class (every field can be a grid
axis), its lab's experiment, the numerics (config, init) -> result, the summary row sweep.json and
sweep.png are built from, and the job module whose child_record() records one result as a run.
Nothing here imports MLflow or Dask: a worker imports this module and the numerics only.
"""
import os
import signal
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from initstudy.studies.ablate import compute as ablate

from initstudy.studies.phase import compute as phase

from initstudy.record import provenance, results

from initstudy.studies.walk import compute as walk


@dataclass(frozen=True)
class Study:
    name: str
    config: type
    experiment: str
    compute: Callable  # (config, init) -> result
    row: Callable  # result -> {summary key: number or None}, for sweep.json / sweep.png
    panels: tuple  # (row key, y label, log scale) of sweep.png


def _ablate_row(r) -> dict:
    return {"outcome": r.outcome, "steps_to_nan": r.steps_to_nan, "final_loss": results.jsonable([r.final_loss])[0]}


def _walk_row(r) -> dict:
    sat = np.flatnonzero(r.saturated)
    return {"final_layer_variance": results.jsonable([r.var[-1]])[0],
            "saturated_from_layer": int(sat[0]) if len(sat) else None}


def phase_row(r) -> dict:
    """A cell's numbers as phase.json and a resumed sweep read them (exact: floats as repr): its summary,
    weight seed and the loss series' sha256 (the series itself is the child's Training/loss)."""
    return {**{k: results.jsonable([v])[0] if isinstance(v, float) else v for k, v in r.summary().items()},
            "weight_seed": r.weight_seed, "last_loss": results.jsonable([r.losses[-1]])[0],
            "loss_sha256": phase.loss_digest(r.losses)}


STUDIES = {
    "ablate": Study("ablate", ablate.AblateConfig, ablate.EXPERIMENT, ablate.train, _ablate_row,
                    (("final_loss", "final training loss, runs that trained (log scale)", True),
                     ("steps_to_nan", "steps to NaN, runs that diverged", False))),
    "walk": Study("walk", walk.WalkConfig, walk.EXPERIMENT, walk.run_walk, _walk_row,
                  (("final_layer_variance", "final-layer activation variance (log scale)", True),)),
    "phase": Study("phase", phase.CellConfig, phase.EXPERIMENT, phase.train_cell, phase_row,
                   (("train_acc", "final training accuracy (whole training set)", False),)),
}

# ---- on a worker ----

_worker = {}  # what this worker process computes with: its BLAS (pinned once) and machine


def start_worker() -> dict:
    """BLAS pinned to one thread and warmed up before any computation, as a run alone does; the
    kernel and machine recorded on every child this worker computes."""
    if not _worker:
        _worker["limit"] = provenance.pin_blas_threads()  # kept alive for the process
        provenance.warm_up_blas()
        _worker.update(blas=provenance.blas(), hardware=provenance.hardware())
    return {"blas": _worker["blas"], "hardware": _worker["hardware"]}


def compute(study: str, config, init: str):
    """A sweep task: (result, the worker's {blas, hardware}, (wall, CPU) seconds of compute measured here)."""
    machine = start_worker()
    _fault_injection(config, init)
    t0, c0 = time.perf_counter(), time.thread_time()
    r = STUDIES[study].compute(config, init)
    return r, machine, (time.perf_counter() - t0, time.thread_time() - c0)


def _fault_injection(config, init):
    """INITSTUDY_FAULT_KILL_WORKER="field=value": a task whose config has that value SIGKILLs its own
    worker, every time (the fault tests' crashing task; a real crash, not a mock). Unset: nothing."""
    spec = os.environ.get("INITSTUDY_FAULT_KILL_WORKER")
    if spec:
        key, _, value = spec.partition("=")
        have = init if key == "init" else getattr(config, key, None)
        if str(have) == value:
            os.kill(os.getpid(), signal.SIGKILL)
