"""`scaling` (lab 02, why 1/sqrt(n)): one run holding the dot-product variances per width and scale,
the depth walks and the finite-width spread, beside theory (scaling.py)."""
import numpy as np

from initstudy.record import keys, manifest, provenance, results, tracking
from initstudy.core.config import to_dict
from initstudy.run.runs import (add_common_arguments, common_params, config_from_args, finish, mlflow_block, record,
                            run_set, summary_metrics, today, write_text)
from initstudy.studies import STUDIES
from initstudy.studies.scaling import figures
from initstudy.studies.scaling.compute import SCALES, ScalingConfig, run_scaling, title
from initstudy.studies.scaling.record import scaling_json

EXPERIMENT = STUDIES["scaling"].experiment
HELP = "lab 02: why 1/sqrt(n): Var(x.w) per width and scale, its compounding over depth, the finite-width spread"
NAME = "why-sqrt-n"  # the run's name tag (the study has no init)


# The MLflow names, built here and nowhere else (rename them here).
def dot_key(scale: str, theory: bool = False) -> str:
    return f"var_scale_{scale}" + ("_theory" if theory else "")


def exact_theory(scale: str, n: int) -> float:
    """n k^2 without rounding (results.json's n * (1/sqrt(n))^2 is 0.9999999999999998 at some n: a sawtooth)."""
    return {"1": float(n), "1_over_n": 1.0 / n, "1_over_sqrt_n": 1.0}[scale]


def depth_key(key: str, theory: bool = False) -> str:
    return f"depth_var_{key}" + ("_theory" if theory else "")


def finite_key(n: int, theory: bool = False) -> str:
    return f"log_ratio_sd_n{n}" + ("_theory" if theory else "")


def add_arguments(parser):
    add_common_arguments(parser, ScalingConfig, init=False)


def main(args):
    config = config_from_args(ScalingConfig, args)
    out = run(config, args.tracking_uri)
    s = out["doc"]["summary"]
    print(f"scaling: logged run {out['run_ids']['top']} (kappa fitted {s['kappa_fit']:.3g}, theory {s['kappa_theory']:g})"
          f"\n  mlflow ui: {out['link']}")


def metrics(doc: dict) -> list:
    """Dot products at step log2 n, depth walks at step L, finite-width spread at step L."""
    out = []
    steps = [int(np.log2(n)) for n in doc["dot"]["widths"]]
    for k in SCALES:
        b = doc["dot"]["scales"][k]
        theory = [exact_theory(k, n) for n in doc["dot"]["widths"]]
        for key in (dot_key, lambda k, t=False: keys.finding(dot_key(k, t))):  # the headline section first
            out += [(key(k), v, s) for v, s in zip(b["var"], steps)]
            out += [(key(k, True), v, s) for v, s in zip(theory, steps)]
    for key, b in doc["depth"].items():
        out += [(depth_key(key), v, l) for l, v in enumerate(b["var"])]
        out += [(depth_key(key, True), v, l) for l, v in enumerate(b["theory"])]
    fw, kappa = doc["finite_width"], doc["summary"]["kappa_theory"]
    for n, sd in zip(fw["widths"], fw["sd"]):
        out += [(finite_key(n), v, l) for l, v in enumerate(sd)]
        out += [(finite_key(n, True), float(np.sqrt(kappa * l / n)), l) for l in range(len(sd))]
    return [(k, v, s) for k, v, s in out if v is not None]  # a value that does not apply is not logged


def run(config, tracking_uri: str | None = None) -> dict:
    tracker = tracking.Tracker(tracking_uri)
    cfg = to_dict(config)
    with provenance.pin_blas_threads(), run_set(tracker, EXPERIMENT, "scaling", [NAME]) as ids:
        r = run_scaling(config)
        doc = scaling_json(cfg, r)
        prov = provenance.collect()
        mf = manifest.build(experiment=EXPERIMENT, date=today(), seed=config.seed, provenance=prov, config=cfg,
                            inits=[], seeds=config.stream_seeds(), results_summary=doc["summary"],
                            mlflow=mlflow_block(tracker, ids))
        record(tracker, ids["top"], common_params(cfg, prov), summary_metrics(doc["summary"]) + metrics(doc), {
            "results.json": write_text(results.dumps(doc)),
            "manifest.json": write_text(manifest.dumps(mf)),
            "scaling.png": lambda path: figures.scaling(doc, path, title=title(cfg)),
        })
        link = finish(tracker, ids, {ids["top"]: description(doc)})
    return {"run_ids": ids, "doc": doc, "result": r, "link": link}


def description(doc: dict) -> str:
    """The run's one line on what it found, and how to read it."""
    s = doc["summary"]
    return (f"Var(x.w) is n k^2: only k = 1/sqrt(n) keeps it 1 at every width; finite-width spread kappa fitted "
            f"{s['kappa_fit']:.3g} (theory {s['kappa_theory']:g}).\n\nscaling.png overlays measured (solid) and "
            "theory (dashed) on log axes; results.json holds every number.")
