"""`residual`: the residual study (issue 26, lab 40) as a parent run with a child per cell (model, depth, seed,
lr), computed on the Dask sweep engine (run/sweep.py), recorded in the lab's experiment. The parent holds
residual.json (every cell, each model's best lr, the claims), residual.png and manifest.json."""

from initstudy.core.config import to_dict
from initstudy.record import keys, results, tracking
from initstudy.run import sweep as sweep_job
from initstudy.run.runs import common_params, summary_metrics, write_text
from initstudy.studies import STUDIES
from initstudy.studies.phase import compute as phase
from initstudy.studies.residual import compute as residual
from initstudy.studies.residual.compute import ResidualConfig

EXPERIMENT = STUDIES["residual"].experiment
HELP = "residual networks at depth: branch none / 1/sqrt(L) / zero / Fixup vs a plain MLP (+BN) on MNIST-1D"
CELL_KEYS = ("label", "model", "arch", "branch", "norm", "depth", "seed", "lr", "train_acc", "test_acc", "diverged",
             "steps_to_nan", "weight_seed", "last_loss", "loss_sha256", "run_id", "compute_seconds")


def add_arguments(parser):
    sweep_job.add_study_arguments(parser, ResidualConfig, "residual")


def main(args):
    sweep_job.run_study("residual", ResidualConfig, args, record_parent, headline)


def headline(doc: dict) -> str:
    c = doc["claims"]
    if c is None:  # no cell finished: said here, then the failed cells are named (JobFailed)
        return "no cell finished"
    return f"train at depth {c['deepest']}: {', '.join(c['train_at_deepest']) or 'none'}"


def child_record(config, r, prov: dict, date: str, mlflow_ids: dict) -> tuple:
    """(params, metrics, tags, artifacts) of one cell: its config and seeds, the loss every step, the summary."""
    params = common_params(to_dict(config), prov, init=r.init, weight_seed=r.weight_seed)
    metrics = [(keys.series("loss"), v, s) for s, v in enumerate(r.losses)] + summary_metrics(r.summary())
    outcome = "diverged" if r.diverged else "trained" if r.train_acc >= residual.TRAINED_ACC else "untrained"
    return params, metrics, {tracking.OUTCOME_TAG: outcome}, {}


def cells_of(rows: list) -> list:
    """residual.json's cells: the finished rows, each with its architecture (branch None for the MLP)."""
    out = []
    for r in rows:
        if r["status"] == "FINISHED":
            c = {**r, **residual.arch_of(r["model"])}
            out.append({k: c.get(k) for k in CELL_KEYS})
    return out


def document(config: ResidualConfig, rows: list, timing: dict) -> dict:
    g = config.grid()
    cells = cells_of(rows)
    return {"experiment": EXPERIMENT, "config": {**to_dict(config), "input_scaling": phase.INPUT_SCALING,
                                                 "trained_rule": f"train_acc >= {residual.TRAINED_ACC:g}",
                                                 "lr_rule": "per (model, depth): the lr of lrs with the best mean "
                                                            "train_acc over seeds (ties: the smaller)"},
            "grid": g, "best_lr": {m: {str(d): lr for d, lr in per.items()} for m, per in residual.best_lrs(cells).items()},
            "claims": residual.claims(cells, g["depth"]) if cells else None, "timing": timing,
            "failed": [r["label"] for r in rows if r["status"] != "FINISHED"], "cells": cells}


def description(doc: dict) -> str:
    c = doc["claims"]
    if c is None:
        return "no cell finished"
    rows = []
    for m, per in c["table"].items():
        rows.append(f"{m}: " + ", ".join(f"depth {d} train {v['train_acc']:.3f} test {v['test_acc']:.3f} (lr {v['lr']:g})"
                                         for d, v in per.items()))
    return (f"Train (mean train acc >= {residual.TRAINED_ACC:g}) at depth {c['deepest']} without normalization: "
            f"{', '.join(c['train_at_deepest']) or 'none'}.  \n" + "  \n".join(rows)
            + "\n\nresidual.png (Artifacts) is accuracy against depth; residual.json holds every cell; each child is one cell.")


def record_parent(config: ResidualConfig, held: dict, tracker, rid, g, rows, prov, timing):
    from initstudy.studies.residual import plot

    held["doc"] = doc = document(config, rows, timing)
    c = doc["claims"] or {"train_at_deepest": [], "table": {}}
    sweep_job.record_study_parent(
        tracker, rid, config, rows, prov, doc, experiment=EXPERIMENT,
        summary={"cells": len(doc["cells"]), "train_at_deepest": c["train_at_deepest"]},
        seeds={**config.stream_seeds(), **{f"weights/{x['label']}": x["weight_seed"] for x in doc["cells"]}},
        ds=phase.dataset(config), input_scaling=phase.INPUT_SCALING, note=description(doc),
        metrics=[("cells_trained_at_deepest", len(c["train_at_deepest"]), 0), ("runs_failed", len(doc["failed"]), 0),
                 ("wall_seconds", doc["timing"]["wall_seconds"], 0)], artifacts={
            "residual.json": write_text(results.dumps(doc)),
            "residual.png": lambda path: plot.accuracy_vs_depth(doc, path)})
