"""`walk` (lab 00): the variance walk of every init, recorded as a parent run with a child per init.

Beside lab 00's series each init's run records the signal-propagation quantities (walk.Signal): the
backward gradient variance and the input pairs' correlation per layer against theory, the depth
scales and phase, and the input-output Jacobian's moments (signal/jacobian.png)."""
import numpy as np

from initstudy.record import keys, manifest, notes, provenance, results, tracking
from initstudy.core.config import to_dict
from initstudy.run.runs import (add_common_arguments, common_params, config_from_args, finish, groups, init_names,
                            lsuv_manifest, lsuv_record, mlflow_block, record, run_set, summary_metrics, today,
                            warn_lsuv, write_text)
from initstudy.studies import STUDIES
from initstudy.studies.walk import figures
from initstudy.studies.walk.record import lab_summary, note, walk_json
from initstudy.studies.walk.compute import WalkConfig, run_walk

EXPERIMENT = STUDIES["walk"].experiment
HELP = "lab 00: per-layer activation variance under each init, with gradients, correlations and the Jacobian"
PHASE_TAG = "initstudy.phase"


def add_arguments(parser):
    add_common_arguments(parser, WalkConfig)


def main(args):
    config = config_from_args(WalkConfig, args)
    for name in init_names(args.init):
        config.check_init(name)  # e.g. lsuv on a resnet: refused before anything starts
    out = run(config, args.init, args.tracking_uri)
    warn_lsuv("initstudy walk", out["results"].values())
    print(f"walk: logged run {out['run_ids']['top']} ({', '.join(out['results'])})\n  mlflow ui: {out['link']}")


def finding_metrics(group) -> list:
    """A parent's headline, per init: the measured and theory growth of the variance per layer,
    (var_L / var_0)^(1/L) up to the last finite layer L, and the final layer's variance (where finite)."""
    out = []
    for r in group:
        last = max(l for l, v in enumerate(r.var) if np.isfinite(v)) if np.isfinite(r.var[0]) else 0
        for key, var in (("growth_per_layer", r.var), ("growth_per_layer_theory", r.var_theory)):
            if last > 0 and var[0] > 0 and np.isfinite(var[last]):
                out.append((keys.finding(f"{key}_{r.init}"), float((var[last] / var[0]) ** (1 / last)), 0))
        out.append((keys.finding(f"final_layer_variance_{r.init}"), float(r.var[-1]), 0))
    return out


def child_metrics(r) -> list:
    """A single init's metrics: the per-layer series (step = layer index; lab 00's and the signal's) and
    its summary (the depth scales that exist, the Jacobian's moments), the same keys for every init."""
    series = {**r.series(), **r.signal.series()}
    m = [(keys.series(name), v, l) for name, values in series.items() for l, v in enumerate(values)]
    return m + summary_metrics({"final_layer_variance": r.var[-1], **r.signal.summary()})


def child_params(config, r) -> dict:
    """A single init's params beyond the config: its seeds; sigma_w2 is the mean-field n Var(W), the
    per-weight variance is weight_variance."""
    s = r.signal
    return {"input_seed": config.input_seed(), "weight_seed": r.weight_seed, "sigma_w2": repr(s.sigma_w2),
            "weight_variance": repr(r.sigma2), **{f"{k}_seed": v for k, v in config.stream_seeds().items()},
            **({} if s.bias_seed is None else {"bias_seed": s.bias_seed})}


def child_tags(r) -> dict:
    return {PHASE_TAG: r.signal.scales["phase"], **lsuv_record(r.lsuv)[2]}


def manifest_seeds(config, group) -> dict:
    bias = {f"biases/{r.init}": r.signal.bias_seed for r in group if r.signal.bias_seed is not None}
    return {"input": config.input_seed(), **{f"weights/{r.init}": r.weight_seed for r in group},
            **config.stream_seeds(), **bias}


def child_record(config, r, prov: dict, date: str, mlflow_ids: dict) -> tuple:
    """(params, metrics, tags, artifacts) of one init's walk, alone or as a sweep's child (the figures
    are the caller's: a sweep does not draw them per child)."""
    cfg = to_dict(config)
    summary = lab_summary([r])
    lsuv_params, lsuv_metrics, _ = lsuv_record(r.lsuv)
    params = common_params(cfg, prov, init=r.init, **child_params(config, r), **lsuv_params)
    mf = manifest.build(experiment=EXPERIMENT, date=date, seed=config.seed, provenance=prov, config=cfg,
                        inits=[r.init], seeds=manifest_seeds(config, [r]), results_summary=summary,
                        mlflow=mlflow_ids)
    mf.update(lsuv_manifest([r]))
    artifacts = {"results.json": write_text(results.dumps(walk_json(cfg, [r]))),
                 "manifest.json": write_text(manifest.dumps(mf))}
    return params, child_metrics(r) + lsuv_metrics, child_tags(r), artifacts


def run(config, init: str = "all", tracking_uri: str | None = None) -> dict:
    names = init_names(init)
    tracker = tracking.Tracker(tracking_uri)
    cfg = to_dict(config)
    with provenance.pin_blas_threads(), run_set(tracker, EXPERIMENT, "walk", names) as ids:
        if len(names) > 1:
            tracker.log(ids["top"], tags={"mlflow.runName": notes.run_name("walk", config, init)})
        out = {n: run_walk(config, n) for n in names}
        prov, date, mlflow_ids = provenance.collect(), today(), mlflow_block(tracker, ids)
        title = f"Variance walk: {config.depth} x {config.width} {config.activation}, batch {config.batch}, {config.dtype}"
        descriptions = {}
        for rid, group in groups(ids, out):
            if len(group) == 1:
                params, metrics, tags, artifacts = child_record(config, group[0], prov, date, mlflow_ids)
            else:
                summary = lab_summary(group)
                params = common_params(cfg, prov, input_seed=config.input_seed(), init=init)
                metrics, tags = finding_metrics(group), None
                mf = manifest.build(
                    experiment=EXPERIMENT, date=date, seed=config.seed, provenance=prov, config=cfg,
                    inits=[r.init for r in group], seeds=manifest_seeds(config, group), results_summary=summary,
                    mlflow=mlflow_ids)
                mf.update(lsuv_manifest(group))
                artifacts = {"results.json": write_text(results.dumps(walk_json(cfg, group))),
                             "manifest.json": write_text(manifest.dumps(mf))}
            descriptions[rid] = note(group, child=len(group) == 1)
            artifacts["variance.png"] = lambda path, g=group: figures.variance_walk(g, path, title=title)
            # in a folder: the UI lists folders, then files by name; variance.png, the lab's figure, is the first one
            artifacts["signal/jacobian.png"] = lambda path, g=group: figures.jacobian_spectrum(g, path, title=title)
            record(tracker, rid, params, metrics, artifacts, tags)
        link = finish(tracker, ids, descriptions)
    return {"run_ids": ids, "results": out, "link": link}


