"""The entry points end to end: validated config -> numerics -> artifacts -> MLflow.

One top-level run per command (the run `mlflow run` opened, or a new one); with init=all it is a
parent with one nested child per init. Runs are opened before the computation so that a failure or
a kill still closes them with a status; metrics go in a handful of batched calls per run.
"""
import contextlib
import datetime
import signal
import tempfile
from pathlib import Path

from initstudy import inits, manifest, plots, provenance, results, tracking
from initstudy.config import one_of, to_dict
from initstudy.walk import EXPERIMENT as WALK_EXPERIMENT
from initstudy.walk import run_walk


class Interrupted(Exception):
    """SIGTERM arrived: unwind, close the runs as KILLED, exit non-zero."""


def _on_sigterm(signum, frame):
    raise Interrupted(f"signal {signum}")


def init_names(choice: str) -> list[str]:
    one_of("init", choice, ("all", *inits.INITS))
    return list(inits.INITS) if choice == "all" else [choice]


@contextlib.contextmanager
def run_set(tracker, experiment: str, kind: str, names: list[str], tags: dict | None = None):
    """Open the top-level run and (for several inits) one child per init; yield {'top', init: id}.
    Close each with FINISHED, FAILED on error, KILLED on Ctrl-C or SIGTERM."""
    signal.signal(signal.SIGTERM, _on_sigterm)
    base = {tracking.EXPERIMENT_TAG: experiment, **(tags or {})}
    single = len(names) == 1
    role = "single" if single else "parent"
    top = tracker.start_run(f"{kind}-{names[0]}" if single else kind,
                            tags={**base, tracking.ROLE_TAG: role, **({tracking.INIT_TAG: names[0]} if single else {})})
    ids = {"top": top}
    for name in names:
        ids[name] = top if single else tracker.start_run(
            f"{kind}-{name}", parent=top, tags={**base, tracking.ROLE_TAG: "child", tracking.INIT_TAG: name})
    status = "FINISHED"
    try:
        yield ids
    except (KeyboardInterrupt, Interrupted):
        status = "KILLED"
        raise
    except BaseException:
        status = "FAILED"
        raise
    finally:
        for rid in dict.fromkeys(ids.values()):
            tracker.end(rid, status)


def mlflow_block(tracker, ids: dict) -> dict:
    run = tracker.client.get_run(ids["top"])
    return {
        "tracking_uri": tracking.redact_uri(tracker.uri),
        "experiment_id": run.info.experiment_id,
        "parent_run_id": ids["top"] if len(ids) > 2 else None,
        "run_ids": {k: v for k, v in ids.items() if k != "top"},
    }


def common_params(config: dict, prov: dict) -> dict:
    return {**config, **provenance.flatten({k: prov[k] for k in ("versions", "hardware", "blas", "git")}),
            "blas.threads_pinned": provenance.BLAS_THREADS}


def walk(config, init: str = "all", tracking_uri: str | None = None) -> dict:
    names = init_names(init)
    _pin = provenance.pin_blas_threads()  # noqa: F841  (kept alive for the whole computation)
    tracker = tracking.Tracker(tracking_uri)
    cfg = to_dict(config)
    with run_set(tracker, WALK_EXPERIMENT, "walk", names) as ids:
        out = {n: run_walk(config, n) for n in names}
        prov = provenance.collect()
        date = datetime.date.today().isoformat()
        seeds = {"input": config.input_seed(), **{f"weights/{n}": r.weight_seed for n, r in out.items()}}
        mf_block = mlflow_block(tracker, ids)
        summary = {f"{n}_final_layer_variance": results.jsonable([r.var[-1]])[0] for n, r in out.items()}
        for key, rid in ids.items():
            if key == "top" and len(names) > 1:
                group = list(out.values())
            elif key == "top":
                continue
            else:
                group = [out[key]]
            _record_walk(tracker, rid, config, cfg, group, prov, date, seeds, mf_block, summary)
    return {"run_ids": ids, "results": out}


def _record_walk(tracker, rid, config, cfg, group, prov, date, seeds, mf_block, summary):
    params = {**common_params(cfg, prov), "input_seed": config.input_seed()}
    metrics = []
    if len(group) == 1:
        r = group[0]
        params.update({"init": r.init, "weight_seed": r.weight_seed, "sigma_w2": repr(r.sigma2)})
        for name, series in r.series().items():
            metrics += [(name, v, l) for l, v in enumerate(series)]
    else:
        params["init"] = "all"
    metrics += [(k, float("nan") if v is None else v, 0) for k, v in summary.items()
                if len(group) > 1 or k.startswith(group[0].init + "_")]
    tracker.log(rid, params=params, metrics=metrics)
    names = [r.init for r in group]
    mf = manifest.build(experiment=WALK_EXPERIMENT, date=date, seed=config.seed, provenance=prov, config=cfg,
                        inits=names, seeds={k: v for k, v in seeds.items() if k == "input" or k.split("/")[-1] in names},
                        results_summary={k: v for k, v in summary.items() if k.split("_")[0] in names},
                        mlflow=mf_block)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "results.json").write_text(results.dumps(results.walk_json(cfg, group)))
        (tmp / "manifest.json").write_text(manifest.dumps(mf))
        plots.variance_walk(group, tmp / "variance.png",
                            title=f"Variance walk: {config.depth} x {config.width} {config.activation}, batch {config.batch}, {config.dtype}")
        tracker.log_artifacts(rid, tmp)
