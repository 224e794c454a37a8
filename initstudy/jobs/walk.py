"""`walk` (lab 00): the variance walk of every init, recorded as a parent run with a child per init."""
from initstudy import manifest, plots, provenance, results, tracking
from initstudy.config import to_dict
from initstudy.jobs import (add_common_arguments, common_params, config_from_args, groups, init_names, mlflow_block,
                            record, run_set, summary_metrics, today, write_text)
from initstudy.walk import EXPERIMENT, WalkConfig, run_walk

HELP = "lab 00: per-layer activation variance under each init"


def add_arguments(parser):
    add_common_arguments(parser, WalkConfig)


def main(args):
    config = config_from_args(WalkConfig, args)
    out = run(config, args.init, args.tracking_uri)
    print(f"walk: logged run {out['run_ids']['top']} ({', '.join(out['results'])})")


def child_record(config, r, prov: dict, date: str, mlflow_ids: dict) -> tuple:
    """(params, metrics, tags, artifacts) of one init's walk, alone or as a sweep's child (the figure
    is the caller's: a sweep does not draw one per child)."""
    cfg = to_dict(config)
    summary = {f"{r.init}_final_layer_variance": results.jsonable([r.var[-1]])[0]}
    params = {**common_params(cfg, prov), "input_seed": config.input_seed(), "init": r.init,
              "weight_seed": r.weight_seed, "sigma_w2": repr(r.sigma2)}
    metrics = summary_metrics(summary) + [(k, v, l) for k, s in r.series().items() for l, v in enumerate(s)]
    mf = manifest.build(experiment=EXPERIMENT, date=date, seed=config.seed, provenance=prov, config=cfg,
                        inits=[r.init], seeds={"input": config.input_seed(), f"weights/{r.init}": r.weight_seed},
                        results_summary=summary, mlflow=mlflow_ids)
    artifacts = {"results.json": write_text(results.dumps(results.walk_json(cfg, [r]))),
                 "manifest.json": write_text(manifest.dumps(mf))}
    return params, metrics, {}, artifacts


def run(config, init: str = "all", tracking_uri: str | None = None) -> dict:
    names = init_names(init)
    tracker = tracking.Tracker(tracking_uri)
    cfg = to_dict(config)
    with provenance.pin_blas_threads(), run_set(tracker, EXPERIMENT, "walk", names) as ids:
        out = {n: run_walk(config, n) for n in names}
        prov, date, mlflow_ids = provenance.collect(), today(), mlflow_block(tracker, ids)
        title = f"Variance walk: {config.depth} x {config.width} {config.activation}, batch {config.batch}, {config.dtype}"
        for rid, group in groups(ids, out):
            if len(group) == 1:
                params, metrics, tags, artifacts = child_record(config, group[0], prov, date, mlflow_ids)
            else:
                names_ = [r.init for r in group]
                summary = {f"{r.init}_final_layer_variance": results.jsonable([r.var[-1]])[0] for r in group}
                params = {**common_params(cfg, prov), "input_seed": config.input_seed(), "init": "all"}
                metrics, tags = summary_metrics(summary), {}
                mf = manifest.build(
                    experiment=EXPERIMENT, date=date, seed=config.seed, provenance=prov, config=cfg, inits=names_,
                    seeds={"input": config.input_seed(), **{f"weights/{r.init}": r.weight_seed for r in group}},
                    results_summary=summary, mlflow=mlflow_ids)
                artifacts = {"results.json": write_text(results.dumps(results.walk_json(cfg, group))),
                             "manifest.json": write_text(manifest.dumps(mf))}
            artifacts["variance.png"] = lambda path, g=group: plots.variance_walk(g, path, title=title)
            record(tracker, rid, params, metrics, artifacts, tags)
    return {"run_ids": ids, "results": out}


