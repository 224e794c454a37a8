"""`ablate` (lab 01): train under every init, recorded as a parent run with a child per init."""
import tempfile
from pathlib import Path

from initstudy.studies.ablate import compute as ablate_mod
from initstudy.core import data, inits
from initstudy.core import parametrization as P
from initstudy.record import keys, manifest, notes, progress, provenance, results, tracking
from initstudy.run import signals
from initstudy.studies import STUDIES
from initstudy.studies.ablate.trainings import Trainings
from initstudy.studies.ablate.record import ablate_json, ablate_summary, note
from initstudy.studies.ablate.compute import AblateConfig
from initstudy.core.config import to_dict
from initstudy.run.runs import (add_common_arguments, common_params, config_from_args, finish, groups, init_names,
                            depth_profiles, layer_series, lsuv_manifest, lsuv_record, mlflow_block, record, run_set,
                            summary_metrics, today, warn_lsuv, write_text)

EXPERIMENT = STUDIES["ablate"].experiment
HELP = "lab 01: train a deep MLP under each init, loss every step"


def add_arguments(parser):
    add_common_arguments(parser, AblateConfig)


def main(args):
    config = config_from_args(AblateConfig, args)
    for name in init_names(args.init):
        config.check_init(name)  # e.g. lsuv with batchnorm: refused before anything starts
    out = run(config, args.init, args.tracking_uri)
    warn_lsuv("initstudy ablate", out["results"].values())
    print(f"ablate: logged run {out['run_ids']['top']}: " + ", ".join(f"{n} {r.outcome}" for n, r in out["results"].items())
          + f"\n  mlflow ui: {out['link']}")


def finding_metrics(group) -> list:
    """A parent's headline, per init: the final loss and validation accuracy of a run that did not
    diverge, the step of the NaN of one that did (None: not logged)."""
    return [(keys.finding(f"{k}_{r.init}"), v, 0) for r in group for k, v in
            (("final_loss", r.final_loss), ("final_val_acc", r.final_val_acc), ("steps_to_nan", r.steps_to_nan))
            if v is not None]


def divergence_metrics(r) -> list:
    """A diverged run says so in its first chart: `Finding/steps_to_nan`."""
    return [] if r.steps_to_nan is None else [(keys.finding("steps_to_nan"), r.steps_to_nan, 0)]


def shown_layers(depth: int) -> tuple:
    """The blocks whose statistics are charted over training: the first, the middle and the last (every
    block's are in diagnostics.json; 98 charts made an ablate run's page 14,562 px tall)."""
    return tuple(sorted({1, (depth + 1) // 2, depth}))


def streamed_metrics(r) -> list:
    """What the workers stream while training: the loss every step and the shown blocks' rows."""
    return ([(keys.series("loss"), v, s) for s, v in enumerate(r.losses)]
            + layer_series(r.diag_steps, r.diag, shown_layers(next(iter(r.diag.values())).shape[1])))


def recorded_after(r) -> list:
    """What is recorded once the init has trained: validation, depth profiles, the summary (the same
    keys for every init; a value that does not apply is left out, as are non-finite points)."""
    m = [(keys.series("val_loss"), v, s) for s, v in zip(r.val_steps, r.val_loss)]
    m += [(keys.series("val_acc"), v, s) for s, v in zip(r.val_steps, r.val_acc)]
    return (m + depth_profiles(r.diag) + summary_metrics(r.summary()) + lsuv_record(r.lsuv)[1]
            + divergence_metrics(r))


def _ablate_metrics(r) -> list:
    """Every metric of one init's run (a sweep child records them all at once)."""
    return streamed_metrics(r) + recorded_after(r)


def layer_params(config) -> dict:
    """The parametrization's multipliers per Linear of the MLP (a resnet takes SP: none, so none logged)."""
    return P.as_params(config.layers()) if config.arch == "mlp" else {}


def _title(config) -> str:
    net = (f"{config.depth}-block {config.activation} resnet (branch {config.branch or 'none'})"
           if config.arch == "resnet" else f"{config.depth}-layer {config.activation} MLP")
    return (f"Init ablation: {net}, width {config.width}, "
            f"lr {config.lr:g}, momentum {config.momentum:g}, batch {config.batch}, {config.dtype}")


def _diag_title(r) -> str:
    return f"{inits.INITS[r.init].label}: activations, gradients, updates"


def diagnostics_png(r) -> bytes:
    """A single init's diagnostics.png (drawn on a worker while the parent records)."""
    from initstudy.studies.ablate import figures

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "diagnostics.png"
        figures.training_diagnostics(r, path, title=_diag_title(r))
        return path.read_bytes()


# Logged while the inits train (the parent process is otherwise idle then): whatever the workers
# have sent is logged at once (~8 ms a log_batch call + 0.12 ms a metric, measured), so what is left
# for after the last step is the last message, not a batch of up to 1000 points (0.2 s). A run
# killed meanwhile keeps what was logged, and run_set flushes the rest.
def _stream(tracker, ids, shown: tuple):
    """(on_diag(name) -> f(step, row) queueing a diagnostics row's `shown` blocks, flush() logging the queue)."""
    queue = ids.partial  # ids.on_step appends each loss here too; mutated in place, never rebound

    def on_diag(name):
        rid = ids[name]
        return lambda step, row: queue.extend(
            (rid, keys.layer(stat, l), v, step) for stat, vals in row.items() for l, v in enumerate(vals, 1)
            if l in shown)

    def flush():
        if not queue:  # called between every two worker messages
            return
        # a Ctrl-C or SIGTERM waits until the batch is in (an exception inside MLflow's session would
        # break the store for the flush that follows), so a killed run has no gap and no repeat
        with signals.held():
            ids.log_partial(tracker)

    return on_diag, flush


def _counted(on_step, bar):
    """on_step, also counting the step on the progress bar."""
    def f(step, value):
        on_step(step, value)
        bar.update(1)
    return f


def lsuv_seeds(group) -> dict:
    """The manifest seed of lsuv's training batch (derived from data_seed), where an init of the group rescaled on one."""
    return {"lsuv_batch": r.lsuv.batch_seed for r in group if r.lsuv is not None}


def data_params(config, block: dict | None) -> dict:
    """The dataset's params: its digest, the shape as resolved (`mlflow run` has logged input_dim etc. as
    given: 0 = the dataset's) and its sha256; none where the set was not built here (a sweep child)."""
    if block is None:
        return {}
    return {"dataset_digest": block["dataset_digest"], **{f"data.{k}": v for k, v in config.shape().items()},
            "data.sha256": block["sha256"]}


def child_record(config, r, prov: dict, date: str, mlflow_ids: dict, data_block: dict | None = None) -> tuple:
    """(params, metrics, tags, artifacts) of one init's run as a sweep's child: every series and the
    summary (the same keys for every init), with what a run alone records besides (init_record)."""
    params, tags, artifacts = init_record(config, r, prov, date, mlflow_ids, data_block)
    return params, _ablate_metrics(r), tags, artifacts


def init_record(config, r, prov: dict, date: str, mlflow_ids: dict, data_block: dict | None = None) -> tuple:
    """(params, tags, artifacts) of one init's run: its config, losses.json and manifest.json (prov: the
    provenance of where it ran; data_block: the dataset's identity, where the set was built here). A run
    alone has streamed its series while training, so only a sweep builds them all (child_record)."""
    cfg = to_dict(config)
    mf = manifest.build(experiment=EXPERIMENT, date=date, seed=config.seed, provenance=prov, config=cfg,
                        inits=[r.init], results_summary=ablate_summary([r]), mlflow=mlflow_ids,
                        seeds={**config.stream_seeds(), f"weights/{r.init}": r.weight_seed, **lsuv_seeds([r])})
    if data_block is not None:
        mf["data"] = data_block
    mf.update(lsuv_manifest([r]))
    lsuv_params, _, lsuv_tags = lsuv_record(r.lsuv)
    params = common_params(cfg, prov, init=r.init, weight_seed=r.weight_seed, **data_params(config, data_block), **layer_params(config),
                           **lsuv_params)
    artifacts = {"losses.json": write_text(results.dumps(ablate_json(cfg, [r]))),
                 "manifest.json": write_text(manifest.dumps(mf)),
                 "diagnostics.json": write_text(results.dumps(diagnostics_json(r)))}
    return params, {tracking.OUTCOME_TAG: r.outcome, **lsuv_tags}, artifacts


def diagnostics_json(r) -> dict:
    """Every block's statistics over training (the charts show shown_layers' only): {steps, stats:
    {stat: rows of one value per block, L01 first}}."""
    return {"init": r.init, "steps": [int(s) for s in r.diag_steps],
            "stats": {stat: [results.jsonable(row) for row in table] for stat, table in r.diag.items()}}


def run(config, init: str = "all", tracking_uri: str | None = None) -> dict:
    names = init_names(init)
    cfg = to_dict(config)
    ds = ablate_mod.dataset(config)
    bar = progress.bar(config.steps * len(names), "ablate", "steps", delay=progress.DELAY)  # counts from now
    trainings = Trainings(config, ds, names, figures=True)  # the inits train while MLflow loads
    from initstudy.record import plots  # matplotlib: ~0.4 s, so after the workers have started
    from initstudy.studies.ablate import figures
    with trainings, provenance.pin_blas_threads(), run_set(
            tracker := tracking.Tracker(tracking_uri), EXPERIMENT, "ablate", names) as ids:
        if len(names) > 1:
            tracker.log(ids["top"], tags={"mlflow.runName": notes.run_name("ablate", config, init)})
        provenance.warm_up_blas()
        plots.warm_up()  # the loss curves are drawn here after the last step: not this process's first figure
        for rid in dict.fromkeys(ids.values()):
            digest = tracker.log_dataset(rid, data.label(config.data, config.data_seed), ds.x_train, ds.y_train)
        trainings.warm_figures()
        prov, date, mlflow_ids = provenance.collect(), today(), mlflow_block(tracker, ids)
        data_block = data.identity(config.data, config.data_seed, config.shape(), ds)
        on_diag, flush = _stream(tracker, ids, shown_layers(config.stages))
        ids.before_flush.append(trainings.drain)  # a kill records what the workers already sent
        diag_png = {}  # init -> Future of its diagnostics.png, drawn as soon as it has trained
        with bar:
            out = trainings.results({n: _counted(ids.on_step(n), bar) for n in names}, {n: on_diag(n) for n in names},
                                    idle=flush, on_result=lambda n, r: diag_png.__setitem__(
                                        n, trainings.draw(diagnostics_png, r)))
        flush()  # the streamed metrics are all in; the rest is recorded below
        title = _title(config)
        descriptions = {}
        block = {**data_block, "dataset_digest": digest}  # what the set is, how it was made
        for rid, group in groups(ids, out):
            descriptions[rid] = note(group, child=len(group) == 1)
            if len(group) == 1:  # one init's run: what a sweep child records; the streamed series are in already
                r = group[0]
                params, tags, artifacts = init_record(config, r, prov, date, mlflow_ids, block)
                metrics = recorded_after(r)
                artifacts["diagnostics.png"] = lambda path, f=diag_png[r.init]: path.write_bytes(f.result())
            else:
                params = common_params(cfg, prov, init=init, **data_params(config, block), **layer_params(config))
                mf = manifest.build(
                    experiment=EXPERIMENT, date=date, seed=config.seed, provenance=prov, config=cfg,
                    inits=[r.init for r in group], results_summary=ablate_summary(group), mlflow=mlflow_ids,
                    seeds={**config.stream_seeds(), **{f"weights/{r.init}": r.weight_seed for r in group},
                           **lsuv_seeds(group)})
                mf["data"] = block
                mf.update(lsuv_manifest(group))
                metrics, tags = finding_metrics(group), {}
                artifacts = {"losses.json": write_text(results.dumps(ablate_json(cfg, group))),
                             "manifest.json": write_text(manifest.dumps(mf))}
            # the loss curves are drawn here first, while a worker draws the diagnostics
            artifacts = {"loss_curves.png": lambda path, g=group: figures.loss_curves(g, path, title=title), **artifacts}
            record(tracker, rid, params, metrics, artifacts, tags)
        link = finish(tracker, ids, descriptions)
    return {"run_ids": ids, "results": out, "link": link}
