"""`phase`: the trainability phase diagram (Schoenholz et al. 2017) as a parent run with a child per
cell (sigma_w^2, depth, seed), computed on the Dask sweep engine (jobs/sweep.py), recorded in the
lab's experiment. The parent holds phase.json (the grid), phase.png, manifest.json and the verdict:
critical_sigma_w2, agreement, deepest_trained_depth (step = the sigma_w^2 index in the grid)."""

import numpy as np

from initstudy.core import theory
from initstudy.record import keys, palette, results, tracking
from initstudy.studies.phase import compute as phase
from initstudy.studies.phase import verdict as T
from initstudy.core.config import to_dict
from initstudy.run.runs import common_params, summary_metrics, write_text
from initstudy.run import sweep as sweep_job
from initstudy.studies import STUDIES
from initstudy.studies.phase import figures
from initstudy.studies.phase.compute import PhaseConfig

EXPERIMENT = STUDIES["phase"].experiment
HELP = "the trainability phase diagram: which (sigma_w^2, depth) of a tanh MLP trains on MNIST-1D, vs 6 xi_c"


def add_arguments(parser):
    sweep_job.add_study_arguments(parser, PhaseConfig, "phase")


def main(args):  # init: a field here, checked by validate()
    sweep_job.run_study("phase", PhaseConfig, args, record_parent, headline, parent_params=to_dict,
                        child_name=cell_name)


def headline(doc: dict) -> str:
    v = doc["verdict"]
    return (f"agreement {_fraction(v['agreement'])} ({len(v['disagreeing'])} cells disagree), critical sigma_w2 "
            f"{v['critical_sigma_w2']:.4g}")


def cell_name(point) -> str:
    """A cell's run name, short enough for the runs table: `σ²1.75 d40` (` s1` for a seed other than 0)."""
    v = point.values
    return f"σ²{v['sigma_w2']:g} d{v['depth']}" + (f" s{v['seed']}" if v.get("seed") else "")


def child_record(config, r, prov: dict, date: str, mlflow_ids: dict) -> tuple:
    """(params, metrics, tags, artifacts) of one cell: its config and seeds, the loss every step, the summary."""
    params = common_params(to_dict(config), prov, init=r.init, weight_seed=r.weight_seed)
    metrics = ([(keys.series("loss"), v, s) for s, v in enumerate(r.losses)] + summary_metrics(r.summary())
               + [(keys.finding("train_acc"), r.train_acc, 0)])  # the "trained" test, the cell's first chart
    outcome = "diverged" if r.steps_to_nan is not None else "trained" if T.trained(r.train_acc) else "untrained"
    color = palette.cmap_color(r.train_acc if np.isfinite(r.train_acc) else 0.0)  # its colour in phase.png
    return params, metrics, {tracking.OUTCOME_TAG: outcome, tracking.COLOR_TAG: color}, {}


def cells_of(rows: list) -> list:
    """phase.json's cells: the finished rows with what the verdict and the figure read."""
    keep = ("label", "init", "sigma_w2", "depth", "seed", "run_id", "weight_seed", "train_acc", "test_acc",
            "final_train_loss", "steps_to_nan", "last_loss", "loss_sha256", "chi1", "xi_c", "six_xi_c",
            "compute_seconds", "compute_cpu_seconds")
    return [{k: r.get(k) for k in keep} for r in rows if r["status"] == "FINISHED"]


def document(config: PhaseConfig, rows: list, timing: dict) -> dict:
    """phase.json: the study's config, the grid, every cell, the theory curve and the verdict."""
    g = config.grid()
    cells = cells_of(rows)
    crit = theory.critical_sw2(config.activation, config.sigma_b2)
    v = T.verdict(cells, g["sigma_w2"], g["depth"], crit)
    return {"experiment": EXPERIMENT, "config": {**to_dict(config), "input_scaling": phase.INPUT_SCALING,
                                                 "trained_rule": f"train_acc >= {T.TRAINED_ACC:g}"},
            "grid": g, "critical_sigma_w2": crit, "theory_curve": phase.theory_curve(config), "verdict": v,
            "timing": timing, "failed": [r["label"] for r in rows if r["status"] != "FINISHED"], "cells": cells}


def summary(doc: dict) -> dict:
    """The manifest's results_summary: the verdict's numbers."""
    v = doc["verdict"]
    return {"critical_sigma_w2": v["critical_sigma_w2"], "agreement": v["agreement"], "cells": v["cells"],
            "trained_cells": v["trained_cells"], "disagreeing_cells": len(v["disagreeing"]),
            "all_disagreeing_near_boundary": v["all_disagreeing_near_boundary"],
            "peak_near_critical": v["peak_near_critical"],
            "deepest_trained_depth": dict(zip(map(repr, doc["grid"]["sigma_w2"]), v["deepest_trained_depth"]))}


def parent_metrics(doc: dict) -> list:
    v = doc["verdict"]
    failed = len(doc["failed"])  # 0 is not logged: a chart of one zero bar reads as empty
    headline = [(keys.finding(k), x, 0) for k, x in (("agreement", v["agreement"]), ("trained_cells", v["trained_cells"]),
                                                     ("critical_sigma_w2", v["critical_sigma_w2"]))]
    return (headline + [("critical_sigma_w2", v["critical_sigma_w2"], 0), ("agreement", v["agreement"], 0),
                        ("trained_cells", v["trained_cells"], 0), ("disagreeing_cells", len(v["disagreeing"]), 0),
                        ("wall_seconds", doc["timing"]["wall_seconds"], 0)]
            + ([("runs_failed", failed, 0)] if failed else [])
            + [("deepest_trained_depth", d, i) for i, d in enumerate(v["deepest_trained_depth"])])


def seeds_of(config: PhaseConfig, cells: list) -> dict:
    """The seeds a re-run needs: the data's and batches', and each (depth, seed)'s weight seed."""
    return {**config.stream_seeds(), **{f"weights/d{c['depth']}/s{c['seed']}": c["weight_seed"] for c in cells}}


def _fraction(x) -> str:
    return "n/a (no cell finished)" if x is None else f"{x:.3f}"


def description(doc: dict) -> str:
    v = doc["verdict"]
    deep = ", ".join(f"{s:g}: {d}" for s, d in zip(doc["grid"]["sigma_w2"], v["deepest_trained_depth"]))
    return (f"{v['cells']} cells, {v['trained_cells']} trained (train acc >= {T.TRAINED_ACC:g}); agreement with "
            f"depth <= 6 xi_c: {_fraction(v['agreement'])}; {len(v['disagreeing'])} cells disagree"
            f"{' (all next to the boundary)' if v['all_disagreeing_near_boundary'] else ''}. Critical sigma_w^2 = "
            f"{v['critical_sigma_w2']:.6g}. Deepest trained depth per sigma_w^2: {deep}.\n\nThe `Finding` section holds "
            "the verdict. The chart `deepest_trained_depth` has step = the index of sigma_w^2 in the grid ("
            + ", ".join(f"{i}: {s:g}" for i, s in enumerate(doc["grid"]["sigma_w2"])) + "). phase.png (Artifacts) "
            "is the diagram; phase.json holds every cell; each child is one cell, its description says whether "
            "it trained and what the theory said.")


def record_parent(config: PhaseConfig, held: dict, tracker, rid, g, rows, prov, timing):
    held["doc"] = doc = document(config, rows, timing)
    sweep_job.record_study_parent(
        tracker, rid, config, rows, prov, doc, experiment=EXPERIMENT, summary=summary(doc),
        seeds=seeds_of(config, doc["cells"]), ds=phase.dataset(config), input_scaling=phase.INPUT_SCALING,
        metrics=parent_metrics(doc), note=description(doc), artifacts={
            "phase.json": write_text(results.dumps(doc)),
            "phase.png": lambda path: figures.phase_diagram(doc, path, T.TRAINED_ACC)})
