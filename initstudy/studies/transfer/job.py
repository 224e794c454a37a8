"""`transfer` (lab 30): learning-rate transfer across width as a parent run with a child per cell
(param, width, log2 lr, seed), computed on the Dask sweep engine (run/sweep.py), recorded in the lab's
experiment. The parent holds transfer.json (every cell), transfer.png, manifest.json and the verdict:
the optimum log2 lr per width and param, its shift in grid steps, whether wider is better."""

from initstudy.core import parametrization as P
from initstudy.core.config import to_dict
from initstudy.record import keys, results, tracking
from initstudy.run import sweep as sweep_job
from initstudy.run.runs import common_params, summary_metrics, write_text
from initstudy.studies.phase import compute as phase
from initstudy.studies.transfer import compute as T
from initstudy.studies.transfer.compute import EXPERIMENT, TransferConfig

HELP = "lab 30: learning-rate transfer across width, SP vs muP (TP V Figure 1) on MNIST-1D"


def add_arguments(parser):
    sweep_job.add_study_arguments(parser, TransferConfig, "transfer")


def main(args):
    sweep_job.run_study("transfer", TransferConfig, args, record_parent, lambda doc: shifts(doc["verdict"]))


def shifts(v: dict) -> str:
    """One line: each param's optimum at the narrowest and widest width and the shift in grid steps."""
    parts = []
    for p, rows in v["optima"].items():
        a, b, s = rows[0]["log2_lr"], rows[-1]["log2_lr"], v["shift_steps"][p]
        parts.append(f"{p} optimum 2^{_g(a)} at width {rows[0]['width']} -> 2^{_g(b)} at {rows[-1]['width']} "
                     f"({'n/a' if s is None else f'{s:+g}'} grid steps)")
    return "; ".join(parts)


def _frac(x) -> str:
    return "n/a" if x is None else f"{x:.2f}"


def _g(x) -> str:
    return "n/a" if x is None else f"{x:g}"


def child_record(config, r, prov: dict, date: str, mlflow_ids: dict) -> tuple:
    """(params, metrics, tags, artifacts) of one cell: its config, lr, seeds and multipliers, the loss every
    step, the summary (train_loss absent where it diverged)."""
    params = common_params(to_dict(config), prov, init=r.init, weight_seed=r.weight_seed, lr=2.0**config.log2_lr,
                           **P.as_params(config.ablate_config().layers()))
    metrics = [(keys.series("loss"), v, s) for s, v in enumerate(r.losses)] + summary_metrics(r.summary())
    return params, metrics, {tracking.OUTCOME_TAG: "diverged" if r.diverged else "trained"}, {}


CELL_KEYS = ("label", "param", "optimizer", "width", "log2_lr", "seed", "init", "run_id", "weight_seed",
             "train_loss", "train_acc", "test_acc", "diverged", "steps_to_nan", "last_loss", "loss_sha256",
             "compute_seconds", "compute_cpu_seconds")


def cells_of(config: TransferConfig, rows: list) -> list:
    """transfer.json's cells: the finished rows, with the shared optimizer named on each."""
    return [{k: ({**r, "optimizer": config.optimizer}).get(k) for k in CELL_KEYS}
            for r in rows if r["status"] == "FINISHED"]


def document(config: TransferConfig, rows: list, timing: dict) -> dict:
    """transfer.json: the study's config, the grid, every cell and the verdict."""
    g = config.grid()
    cells = cells_of(config, rows)
    return {"experiment": EXPERIMENT, "config": {**to_dict(config), "input_scaling": T.INPUT_SCALING},
            "grid": g, "verdict": T.verdict(cells, g), "timing": timing,
            "failed": [r["label"] for r in rows if r["status"] != "FINISHED"], "cells": cells}


def summary(doc: dict) -> dict:
    """The manifest's results_summary: the verdict's numbers."""
    v = doc["verdict"]
    return {"optimum_log2_lr": {p: {str(x["width"]): x["log2_lr"] for x in rows} for p, rows in v["optima"].items()},
            "shift_steps": v["shift_steps"], "cells": v["cells"], "diverged_cells": v["diverged_cells"],
            "wider_better_fraction": {p: w["fraction"] for p, w in v["wider_is_better"].items()}}


def parent_metrics(doc: dict) -> list:
    v, out = doc["verdict"], []
    for p, rows in v["optima"].items():
        out += [(f"optimum_log2_lr_{p}", x["log2_lr"], i) for i, x in enumerate(rows) if x["log2_lr"] is not None]
        out += [(f"optimum_sd_{p}", x["sd"], i) for i, x in enumerate(rows) if x["sd"] is not None]
        if v["shift_steps"][p] is not None:
            out.append((f"shift_steps_{p}", v["shift_steps"][p], 0))
        if v["wider_is_better"][p]["fraction"] is not None:
            out.append((f"wider_better_fraction_{p}", v["wider_is_better"][p]["fraction"], 0))
    return out + [("diverged_cells", v["diverged_cells"], 0), ("runs_failed", len(doc["failed"]), 0),
                  ("wall_seconds", doc["timing"]["wall_seconds"], 0)]


def seeds_of(config: TransferConfig, cells: list) -> dict:
    """The seeds a re-run needs: the data's and batches', and each seed's weight seed (the same for every cell of it)."""
    return {**config.cell(*_first(config)).stream_seeds(), **{f"weights/s{c['seed']}": c["weight_seed"] for c in cells}}


def _first(config: TransferConfig) -> tuple:
    g = config.grid()
    return g["param"][0], g["width"][-1], g["log2_lr"][0], g["seed"][0]


def description(doc: dict) -> str:
    v = doc["verdict"]
    wb = "; ".join(f"{p}: {_frac(w['fraction'])}" for p, w in v["wider_is_better"].items())
    return (f"{v['cells']} cells, {v['diverged_cells']} diverged. {shifts(v)}. Fraction of lrs (none diverged) where "
            f"every doubling of width lowered the training loss: {wb}.\n\ntransfer.png (Artifacts) is TP V Figure 1 "
            "for this MLP; transfer.json holds every cell; each child is one cell.")


def record_parent(config: TransferConfig, held: dict, tracker, rid, g, rows, prov, timing):
    from initstudy.studies.transfer import plots

    held["doc"] = doc = document(config, rows, timing)
    sweep_job.record_study_parent(
        tracker, rid, config, rows, prov, doc, experiment=EXPERIMENT, summary=summary(doc),
        seeds=seeds_of(config, doc["cells"]), ds=phase.dataset(config), input_scaling=T.INPUT_SCALING,
        metrics=parent_metrics(doc), note=description(doc), artifacts={
            "transfer.json": write_text(results.dumps(doc)),
            "transfer.png": lambda path: plots.transfer(doc, path)})
