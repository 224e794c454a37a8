"""`ablate` (lab 01): train under every init, recorded as a parent run with a child per init."""
import tempfile
from pathlib import Path

from initstudy import ablate as ablate_mod
from initstudy import diagnostics, inits, manifest, parallel, progress, provenance, results, tracking
from initstudy.ablate import EXPERIMENT, AblateConfig
from initstudy.config import to_dict
from initstudy.jobs import (add_common_arguments, common_params, config_from_args, groups, init_names, mlflow_block,
                            record, run_set, summary_metrics, today, write_text)

HELP = "lab 01: train a deep MLP under each init, loss every step"


def add_arguments(parser):
    add_common_arguments(parser, AblateConfig)


def main(args):
    config = config_from_args(AblateConfig, args)
    out = run(config, args.init, args.tracking_uri)
    print(f"ablate: logged run {out['run_ids']['top']}: " + ", ".join(f"{n} {r.outcome}" for n, r in out["results"].items()))


def ablate_summary(group) -> dict:
    """The lab's results_summary: steps_to_nan_<init>, final_loss_<init> (null where none)."""
    out = {}
    for r in group:
        out[f"steps_to_nan_{r.init}"] = r.steps_to_nan
        out[f"final_loss_{r.init}"] = results.jsonable([r.final_loss])[0]
        out[f"outcome_{r.init}"] = r.outcome
    return out


def _ablate_metrics(r) -> list:
    m = [("loss", v, s) for s, v in enumerate(r.losses[: (r.steps_to_nan + 1) if r.steps_to_nan is not None else None])]
    m += [("val_loss", v, s) for s, v in zip(r.val_steps, r.val_loss)]
    m += [("val_acc", v, s) for s, v in zip(r.val_steps, r.val_acc)]
    for stat, table in r.diag.items():
        for row, step in zip(table, r.diag_steps):
            m += [(diagnostics.metric_key(stat, l), v, step) for l, v in enumerate(row, start=1)]
    m += summary_metrics(r.summary())
    return m


def _title(config) -> str:
    return (f"Init ablation: {config.depth}-layer {config.activation} MLP, width {config.width}, "
            f"lr {config.lr:g}, momentum {config.momentum:g}, batch {config.batch}, {config.dtype}")


def _diag_title(r) -> str:
    return f"{inits.INITS[r.init].label}: activations, gradients, updates"


def diagnostics_png(r) -> bytes:
    """A single init's diagnostics.png (drawn in the figure worker while the parent records)."""
    from initstudy import plots

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "diagnostics.png"
        plots.training_diagnostics(r, path, title=_diag_title(r))
        return path.read_bytes()


# Logged while the inits train (the parent process is otherwise idle then): whatever the workers
# have sent is logged at once (~8 ms a log_batch call + 0.12 ms a metric, measured), so what is left
# for after the last step is the last message, not a batch of up to 1000 points (0.2 s). A run
# killed meanwhile keeps what was logged, and run_set flushes the rest.
STREAMED = ("loss", *diagnostics.STATS)


def _stream(tracker, ids):
    """(on_diag(name) -> f(step, row) queueing a diagnostics row, flush() logging the queue)."""
    queue = ids.partial  # ids.on_step appends each loss here too; mutated in place, never rebound

    def on_diag(name):
        rid = ids[name]
        return lambda step, row: queue.extend(
            (rid, diagnostics.metric_key(stat, l), v, step) for stat, vals in row.items() for l, v in enumerate(vals, 1))

    def flush():
        if not queue:  # called between every two worker messages
            return
        # a Ctrl-C or SIGTERM waits until the batch is in (an exception inside MLflow's session would
        # break the store for the flush that follows), so a killed run has no gap and no repeat
        with parallel.signals_held():
            ids.log_partial(tracker)

    return on_diag, flush


def _counted(on_step, bar):
    """on_step, also counting the step on the progress bar."""
    def f(step, value):
        on_step(step, value)
        bar.update(1)
    return f


def child_record(config, r, prov: dict, date: str, mlflow_ids: dict) -> tuple:
    """(params, metrics, tags, artifacts) of one init's run, alone or as a sweep's child: its config,
    every series, the summary, losses.json and manifest.json (prov: the provenance of where it ran)."""
    cfg = to_dict(config)
    summary = ablate_summary([r])
    mf = manifest.build(experiment=EXPERIMENT, date=date, seed=config.seed, provenance=prov, config=cfg,
                        inits=[r.init], seeds={**config.stream_seeds(), f"weights/{r.init}": r.weight_seed},
                        results_summary=summary, mlflow=mlflow_ids)
    params = {**common_params(cfg, prov), "init": r.init, "weight_seed": r.weight_seed}
    artifacts = {"losses.json": write_text(results.dumps(results.ablate_json(cfg, [r]))),
                 "manifest.json": write_text(manifest.dumps(mf))}
    return params, _ablate_metrics(r) + summary_metrics(summary), {tracking.OUTCOME_TAG: r.outcome}, artifacts


def run(config, init: str = "all", tracking_uri: str | None = None) -> dict:
    names = init_names(init)
    cfg = to_dict(config)
    ds = ablate_mod.dataset(config)
    bar = progress.bar(config.steps * len(names), "ablate", "steps", delay=progress.DELAY)  # counts from now
    trainings = parallel.Trainings(config, ds, names, figures=True)  # the inits train while MLflow loads
    from initstudy import plots  # matplotlib: ~0.4 s, so after the workers have started
    with trainings, provenance.pin_blas_threads(), run_set(
            tracker := tracking.Tracker(tracking_uri), EXPERIMENT, "ablate", names) as ids:
        provenance.warm_up_blas()
        plots.warm_up()  # the loss curves are drawn here after the last step: not this process's first figure
        for rid in dict.fromkeys(ids.values()):
            digest = tracker.log_dataset(rid, f"synthetic-{config.data_seed}", ds.x_train, ds.y_train)
        trainings.start_figures()  # now: its import would compete with MLflow's and the trainings' for 2 cores
        prov, date, mlflow_ids = provenance.collect(), today(), mlflow_block(tracker, ids)
        on_diag, flush = _stream(tracker, ids)
        ids.before_flush.append(trainings.drain)  # a kill records what the workers already sent
        diag_png = {}  # init -> Future of its diagnostics.png, drawn as soon as it has trained
        with bar:
            out = trainings.results({n: _counted(ids.on_step(n), bar) for n in names}, {n: on_diag(n) for n in names},
                                    idle=flush, on_result=lambda n, r: diag_png.__setitem__(
                                        n, trainings.draw(diagnostics_png, r)))
        flush()  # the streamed metrics are all in; the rest is recorded below
        title = _title(config)
        for rid, group in groups(ids, out):
            if len(group) == 1:  # one init's run: what a sweep child records, plus the streamed and drawn
                r = group[0]
                params, metrics, tags, artifacts = child_record(config, r, prov, date, mlflow_ids)
                params["dataset_digest"] = digest
                metrics = [m for m in metrics if m[0].split("/")[0] not in STREAMED]
                artifacts["loss_curves.png"] = lambda path, g=group: plots.loss_curves(g, path, title=title)
                artifacts["diagnostics.png"] = lambda path, f=diag_png[r.init]: path.write_bytes(f.result())
                record(tracker, rid, params, metrics, artifacts, tags)
                continue
            names_ = [r.init for r in group]
            params = {**common_params(cfg, prov), "dataset_digest": digest, "init": "all"}
            summary = ablate_summary(group)
            mf = manifest.build(
                experiment=EXPERIMENT, date=date, seed=config.seed, provenance=prov, config=cfg, inits=names_,
                seeds={**config.stream_seeds(), **{f"weights/{r.init}": r.weight_seed for r in group}},
                results_summary=summary, mlflow=mlflow_ids)
            record(tracker, rid, params, summary_metrics(summary), {
                "losses.json": write_text(results.dumps(results.ablate_json(cfg, group))),
                "manifest.json": write_text(manifest.dumps(mf)),
                "loss_curves.png": lambda path, g=group: plots.loss_curves(g, path, title=title),
            })
    return {"run_ids": ids, "results": out}
