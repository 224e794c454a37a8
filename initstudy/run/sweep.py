"""`sweep`: a grid of runs of one study (ablate, walk, ...) over any of its parameters, computed on
Dask (initstudy.run.engine), nested under one parent run.

The workers compute: config in, result out, BLAS pinned to one thread, no MLflow. This process is the
only writer: it opens the parent and the children, then records each child as its result arrives
(as_completed), through the child_record() a single run of the study uses, in a few batched calls.
A child's numbers are those of the same config run alone: same config, same seeds, same 1-thread BLAS.
"""
import contextlib
import json
import os
import re
import signal
import sys
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from initstudy.core import data
from initstudy.run import grid as grid_mod
from initstudy.record import manifest, plots, progress, provenance, results, tracking
from initstudy.run import close, signals
from initstudy import studies
from initstudy.core.config import ConfigError, parse, to_dict
from initstudy.run.runs import (JobFailed, _on_sigterm, add_common_arguments, common_params, parsed_config,
                                provenance_params, record, run_set, today, write_text)

HELP = "a grid of runs of one study over any of its parameters, on Dask (this machine's cores or a cluster)"
MAX_WORKERS = 64
ROW_TAG = "initstudy.sweep_row"  # a child's row of sweep.json, kept on the child (a resumed sweep reads it)
POINT_TAG = "initstudy.point"  # a child's grid point, canonical JSON
SPEC_TAG = "initstudy.sweep.spec"  # the parent's grid, canonical JSON (resume compares it)


def add_arguments(parser):
    parser.add_argument("--study", default=studies.SWEEP_DEFAULT, help=f"one of {', '.join(studies.sweepable())}")
    parser.add_argument("--grid", default="", help='axes, e.g. "init=xavier,kaiming;depth=6,12,24;seed=0,1,2"')
    parser.add_argument("--set", dest="fixed", default="", help='fixed parameters, e.g. "steps=200;activation=tanh"')
    parser.add_argument("--inits", default="", help="shorthand for the axis init (default uniform,xavier,kaiming)")
    parser.add_argument("--depths", default="", help="shorthand for the axis depth (default 6,12,24)")
    parser.add_argument("--seeds", default="", help="shorthand for the axis seed (default 0,1,2)")
    parser.add_argument("--steps", default="", help="shorthand for set steps=N")
    parser.add_argument("--workers", default="2", help=f"LocalCluster worker processes, 1..{MAX_WORKERS}")
    parser.add_argument("--scheduler", default="", help="tcp://HOST:8786 or tls://...: a running Dask cluster "
                        "(default: DASK_SCHEDULER_ADDRESS, else a LocalCluster)")
    parser.add_argument("--resume", default="", help="RUN_ID of a KILLED or FAILED sweep parent to continue")
    parser.add_argument("--tls-ca-file", "--tls_ca_file", dest="tls_ca_file", default="")
    parser.add_argument("--tls-cert", "--tls_cert", dest="tls_cert", default="")
    parser.add_argument("--tls-key", "--tls_key", dest="tls_key", default="")
    parser.add_argument("--tracking-uri", "--tracking_uri", dest="tracking_uri", default=None)


@dataclass(frozen=True)
class _Workers:  # parsed like a config, so a bad value gets the same one-line message
    workers: int = 2

    def validate(self):
        if not 1 <= self.workers <= MAX_WORKERS:
            raise ConfigError(f"workers must be in 1..{MAX_WORKERS}, got {self.workers}")


def add_study_arguments(parser, config_cls, kind: str):
    """The command line of a study whose whole point is a grid (phase, transfer, residual): its
    config's fields, then where the grid computes and which parent it resumes."""
    add_common_arguments(parser, config_cls, init=False)
    parser.add_argument("--workers", default="2", help="LocalCluster worker processes")
    parser.add_argument("--scheduler", default="", help="tcp://HOST:8786: a running Dask cluster")
    parser.add_argument("--resume", default="", help=f"RUN_ID of a KILLED or FAILED {kind} parent to continue")
    parser.set_defaults(tls_ca_file="", tls_cert="", tls_key="")


def study_grid(kind: str, config):
    """Such a study's sweep grid: init x the axes of config.grid(), the fields every cell shares fixed
    (floats as repr: a cell's config is exactly the study's)."""
    axes = f"init={config.init};" + ";".join(f"{k}={','.join(map(str, v))}" for k, v in config.grid().items())
    fixed = ";".join(f"{k}={v!r}" if isinstance(v, float) else f"{k}={v}" for k, v in config.shared().items())
    return grid_mod.build(kind, axes, fixed)


def record_study_parent(tracker, rid, config, rows, prov, doc: dict, *, experiment: str, summary: dict, seeds: dict,
                        ds, input_scaling, metrics: list, artifacts: dict, note: str):
    """The parent of a study whose whole point is a grid (phase, transfer, residual): its manifest (every
    cell's run, the seeds a re-run needs, the set as the cells trained on it, logged as the parent's
    dataset input), its config and cell count as params, its metrics, its artifacts and manifest.json."""
    mf = manifest.build(experiment=experiment, date=today(), seed=doc["grid"]["seed"][0], provenance=prov,
                        config=to_dict(config), inits=[config.init], results_summary=summary, seeds=seeds,
                        mlflow={"tracking_uri": tracking.redact_uri(tracker.uri),
                                "experiment_id": tracker.client.get_run(rid).info.experiment_id,
                                "parent_run_id": rid, "run_ids": {c["label"]: c["run_id"] for c in doc["cells"]}})
    digest = tracker.log_dataset(rid, data.label(config.data, config.data_seed), ds.x_train, ds.y_train)
    mf["data"] = {**data.identity(config.data, config.data_seed, data.source(config.data).shape, ds),
                  "input_scaling": input_scaling, "dataset_digest": digest}
    record(tracker, rid, {**to_dict(config), "cells": len(rows), **provenance_params(prov)}, metrics,
           {**artifacts, "manifest.json": write_text(manifest.dumps(mf))}, {tracking.NOTE_TAG: note})


def where(args) -> dict:
    """The engine's settings, validated: {workers, scheduler, tls}."""
    workers = parse(_Workers, {"workers": args.workers}).workers
    scheduler = (args.scheduler or os.environ.get("DASK_SCHEDULER_ADDRESS", "")).strip()
    tls = {k: str(getattr(args, k) or "").strip() for k in ("tls_ca_file", "tls_cert", "tls_key")}
    if scheduler and not re.fullmatch(r"(tcp|tls)://[^\s/]+:\d+", scheduler):
        raise ConfigError(f"scheduler must be tcp://HOST:PORT or tls://HOST:PORT; got {scheduler!r}")
    if any(tls.values()):
        if not scheduler.startswith("tls://"):
            raise ConfigError("tls_ca_file/tls_cert/tls_key apply to a scheduler=tls://HOST:PORT "
                              "(a LocalCluster stays on 127.0.0.1)")
        for k, path in tls.items():
            if not path or not Path(path).is_file():
                raise ConfigError(f"{k} must name a readable file (all three are needed); got {path!r}")
    resume = str(args.resume or "").strip()
    if resume and not re.fullmatch(r"[0-9a-f]{32}", resume):
        raise ConfigError(f"resume must be a run id (32 hex digits); got {resume!r}")
    return {"workers": workers, "scheduler": scheduler, "tls": tls, "resume": resume}


def main(args):
    g = grid_mod.build(args.study, args.grid, args.fixed, args.inits, args.depths, args.seeds, args.steps)
    opts = where(args)
    report("sweep", run(g, opts, args.tracking_uri), "runs", failed_noun="sweep runs")


def run_study(kind: str, config_cls, args, record_parent, headline, parent_params=None, child_name=None):
    """The main of a study whose whole point is a grid (phase, transfer, residual): its config from the
    command line, its grid (study_grid) on the engine, recorded in its lab's experiment under a parent
    named `kind` that record_parent(config, held, tracker, rid, g, rows, prov, timing) records, keeping the
    parent's document in held["doc"]; then report's line, ending in headline(doc). parent_params(config):
    the params the parent logs when it opens; child_name(point): a cell's run name."""
    config = parsed_config(config_cls, args)
    g = study_grid(kind, config)
    opts = where(args)
    held = {}  # the parent's document, for the headline
    out = run(g, opts, args.tracking_uri, record_in=studies.STUDIES[kind].experiment, kind=kind,
              record_parent=partial(record_parent, config, held),
              parent_params=parent_params(config) if parent_params else None, child_name=child_name)
    report(kind, out, "cells", "; " + headline(held["doc"]))


def report(kind: str, out: dict, noun: str, headline: str = "", failed_noun: str = ""):
    """The line a grid prints when it is done (its runs, how many failed, its wall, where, its link);
    failed runs: JobFailed naming each (a non-zero exit)."""
    rows = out["rows"]
    failed = [r for r in rows if r["status"] != "FINISHED"]
    print(f"{kind}: logged run {out['run_ids']['top']}: {len(rows)} {noun} ({out['kept']} kept from before), "
          f"{len(failed)} failed, {out['wall_seconds']:.1f} s on {out['where']}{headline}\n  mlflow ui: {out['link']}")
    if failed:
        raise JobFailed(f"{len(failed)} of {len(rows)} {failed_noun or noun} failed: " + "; ".join(
            f"{r['label']} ({r['error']})" for r in failed))


def point_key(p) -> str:
    return json.dumps({k: v for k, v in p.values.items()}, sort_keys=True)


def _previous(tracker, g, parent_id: str) -> dict:
    """A resumed sweep: {point key: row} of the parent's FINISHED children, after checking the parent
    is a KILLED or FAILED sweep of this very grid (else ConfigError, one line)."""
    run = tracker.get_run(parent_id)
    if run is None or run.data.tags.get(tracking.ROLE_TAG) != "parent" or SPEC_TAG not in run.data.tags:
        raise ConfigError(f"resume={parent_id} is not a sweep parent run in this tracking store")
    if run.info.status == "RUNNING":
        _take_over(tracker, run)
    elif run.info.status not in ("KILLED", "FAILED"):
        raise ConfigError(f"resume={parent_id}: the sweep is {run.info.status}; only a KILLED or FAILED one resumes")
    if run.data.tags[SPEC_TAG] != g.spec():
        was = json.loads(run.data.tags[SPEC_TAG])
        diff = [k for k in ("study", "axes", "fixed") if was[k] != json.loads(g.spec())[k]]
        raise ConfigError(f"resume={parent_id}: this command's {' and '.join(diff)} differ from the sweep's "
                          f"({grid_mod.Grid(was['study'], was['axes'], was['fixed']).text()}); "
                          "resume with the same grid and set")
    kept = {}
    for child in tracker.search(f"tags.`{tracking.PARENT_TAG}` = '{parent_id}'"):
        tags = child.data.tags
        if child.info.status == "FINISHED" and POINT_TAG in tags and ROW_TAG in tags:
            kept.setdefault(tags[POINT_TAG], json.loads(tags[ROW_TAG]))
    return kept


def _take_over(tracker, run):
    """A RUNNING sweep resumes only when its owner is known gone (it ran on this host, its process is
    not running): its stale RUNNING runs are closed as KILLED first, and this command says so."""
    rid, tags = run.info.run_id, run.data.tags
    state = signals.owner_state(tags)
    if state != "gone":
        where = ("still computing (" if state == "alive" else "RUNNING, owned by ") + signals.describe_owner(tags) + \
            (")" if state == "alive" else ", which cannot be checked from here")
        raise ConfigError(f"resume={rid}: the sweep is {where}; if that process is gone, close the sweep first: "
                          f"initstudy close {rid}")
    n = close.stale(tracker, run, f"resume={rid}")
    print(f"sweep: resume={rid} was left RUNNING by {signals.describe_owner(tags)}, which is gone; taking it over "
          f"({n} stale runs closed as KILLED)", file=sys.stderr, flush=True)


def run(g, opts: dict, tracking_uri: str | None = None, record_in: str | None = None, kind: str = "sweep",
        record_parent=None, parent_params: dict | None = None, child_name=None) -> dict:
    """Start the engine (first: an unreachable scheduler fails before any run is opened), open the
    parent (or reopen it) and a child per point to compute, record each result as it arrives.
    A study whose whole point is a grid (phase) records in its lab's experiment (record_in), names
    its parent `kind` and records its own summary on it: record_parent(tracker, rid, g, rows, prov, timing);
    parent_params: the params it logs there (as run_set's), child_name(point): a child's run name."""
    signal.signal(signal.SIGTERM, _on_sigterm)  # from the start: the cluster is shut down on SIGTERM too
    study = studies.STUDIES[g.study]
    with _start_engine(opts) as engine:
        t_up, cpu_up = time.perf_counter(), time.thread_time()  # the floor counts from here
        tracker = tracking.Tracker(tracking_uri) if opts["resume"] else None
        kept = _previous(tracker, g, opts["resume"]) if opts["resume"] else {}
        todo = [p for p in g.points if point_key(p) not in kept]
        # submitted before MLflow loads and the runs open: the workers compute meanwhile
        arrivals = engine.map(studies.compute, [(g.study, p.config, p.init) for p in todo])
        tracker = tracker or tracking.Tracker(tracking_uri)
        _tag_resume(tracker, opts["resume"])
        with _open_runs(tracker, g, study, todo, kind, opts["resume"], record_in, parent_params, child_name) as ids:
            prov, date = provenance.collect(), today()
            rows = dict(kept)
            print(f"{kind}: {len(todo)} runs on {engine.where()}" + (f" ({len(kept)} kept)" if kept else ""),
                  file=sys.stderr, flush=True)
            timing = _record_children(tracker, ids, study, todo, arrivals, rows, prov, date, kind)
            ordered = [rows[point_key(p)] for p in g.points]
            timing = {"wall_seconds": time.perf_counter() - t_up, "cluster_start_seconds": engine.startup_seconds,
                      **timing, "parent_cpu_seconds": time.thread_time() - cpu_up, "threads": engine.threads()}
            (record_parent or _record_parent)(tracker, ids["top"], g, ordered, prov, timing)
            link = tracker.links(ids["top"])
            if any(r["status"] != "FINISHED" for r in ordered):
                ids.closed[ids["top"]] = "FAILED"
                tracker.end(ids["top"], "FAILED")
        return {"run_ids": ids, "rows": ordered, "wall_seconds": timing["wall_seconds"], "where": engine.where(),
                "kept": len(kept), "timing": timing, "link": link}


def _start_engine(opts: dict):
    """The engine, started: an unreachable scheduler or one without workers is one line (JobFailed)."""
    from initstudy.run import engine as engine_mod

    tls = opts["tls"]
    security = engine_mod.security(tls["tls_ca_file"], tls["tls_cert"], tls["tls_key"]) if opts["scheduler"] else None
    try:
        return engine_mod.Engine(opts["workers"], opts["scheduler"], security).__enter__()
    except engine_mod.EngineError as e:
        raise JobFailed(str(e)) from None


def _tag_resume(tracker, resume: str):
    """A resumed sweep under `mlflow run`: the run it opened for this command says what it resumes."""
    if resume and os.environ.get("MLFLOW_RUN_ID"):
        tracker.log(os.environ["MLFLOW_RUN_ID"], tags={tracking.ROLE_TAG: "resume", "mlflow.runName": "sweep-resume",
                                                      "initstudy.resumes": resume})


def _open_runs(tracker, g, study, todo: list, kind: str, resume: str, record_in, parent_params, child_name):
    """run_set of the parent (reopened when resumed) and a child per point to compute, tagged with its point."""
    child_tags = {p.label: {tracking.INIT_TAG: p.init, POINT_TAG: point_key(p),
                            **{f"initstudy.{k}": v for k, v in p.values.items() if k != "init"}} for p in todo}
    names = {p.label: p for p in todo}
    parent_tags = {"initstudy.sweep": g.study, SPEC_TAG: g.spec(), "initstudy.sweep.grid": g.text()}
    return run_set(tracker, study.experiment, kind, [p.label for p in todo], tags=parent_tags,
                   child_tags=child_tags, top=resume or None, params=parent_params,
                   child_name=(lambda label: child_name(names[label])) if child_name else (lambda label: label),
                   record_in=record_in or studies.sweep_experiment(study.experiment))


def _record_children(tracker, ids, study, todo: list, arrivals, rows: dict, prov: dict, date: str, kind: str) -> dict:
    """Record each child as its result arrives, into rows {point key: row}; the seconds spent, summed."""
    from initstudy.run.engine import EngineError

    experiment_id = tracker.client.get_run(ids["top"]).info.experiment_id
    spent = dict.fromkeys(("compute_seconds", "compute_cpu_seconds", "recording_cpu_seconds"), 0.0)
    failed = 0
    with progress.bar(len(todo), kind, "runs") as bar, _lost_scheduler(ids, rows, EngineError):
        for i, got, error in arrivals:
            # a SIGTERM waits until this child is recorded: one raised inside MLflow's session breaks
            # the request (and the flush after it), as in ablate's streaming
            with signals.held():
                c0 = time.thread_time()
                p = todo[i]
                row = _record_child(tracker, ids, study, p, got, error, prov, date, experiment_id)
                if error is None:
                    spent["compute_seconds"] += row["compute_seconds"]
                    spent["compute_cpu_seconds"] += row["compute_cpu_seconds"]
                failed += error is not None
                rows[point_key(p)] = row
                spent["recording_cpu_seconds"] += time.thread_time() - c0
                bar.set_postfix_str(f"{failed} failed", refresh=False)
                bar.update(1)
    return spent


def _record_child(tracker, ids, study, p, got, error, prov: dict, date: str, experiment_id: str) -> dict:
    """One child recorded (what the study records alone for its config, or its error) and ended; its row."""
    rid = ids[p.label]
    row = {"label": p.label, "init": p.init, **{k: v for k, v in p.values.items() if k != "init"},
           "run_id": rid, "status": "FAILED" if error else "FINISHED", "error": error}
    if error is None:
        r, machine, (seconds, cpu) = got
        mlflow_ids = {"tracking_uri": tracking.redact_uri(tracker.uri), "experiment_id": experiment_id,
                      "parent_run_id": ids["top"], "run_ids": {p.init: rid}}
        params, metrics, tags, artifacts = study.part("job").child_record(p.config, r, {**prov, **machine}, date,
                                                                        mlflow_ids)
        row.update(study.sweep_part("row")(r), compute_seconds=seconds, compute_cpu_seconds=cpu)
        tags[ROW_TAG] = json.dumps(row)
        tags[tracking.NOTE_TAG] = study.part("record").note([r], child=True, artifacts=sorted(artifacts))
        record(tracker, rid, params, metrics, artifacts, tags)
    else:
        tracker.log(rid, params=common_params(to_dict(p.config), prov), tags={"initstudy.error": error[:500]})
    tracker.end(rid, row["status"])
    ids.closed[rid] = row["status"]
    return row


@contextlib.contextmanager
def _lost_scheduler(ids, rows, EngineError):
    """The scheduler went away: one line naming it; the children recorded so far stay FINISHED,
    the rest end FAILED (run_set), and the sweep resumes on any scheduler."""
    try:
        yield
    except EngineError as e:
        done = sum(r["status"] == "FINISHED" for r in rows.values())
        raise JobFailed(f"{e}; {done} finished runs kept; continue with resume={ids['top']} "
                        "(on this or another scheduler)") from None


def _record_parent(tracker, rid, g, rows, prov, timing):
    """sweep.json (one row per child, built from the results), sweep.png, and per-line medians as metrics."""
    study = studies.STUDIES[g.study]
    key = study.sweep.panels[0][0]
    metrics = [("runs_failed", sum(r["status"] != "FINISHED" for r in rows), 0),
               ("wall_seconds", timing["wall_seconds"], 0)]
    x, lines = plots.sweep_axes(g.axes)
    if x is not None and all(isinstance(v, int) for v in g.axes[x]):  # a metric's step is an integer
        for line, members in plots.sweep_lines(rows, lines).items():
            for xv in g.axes[x]:
                vals = [r[key] for r in members if r[x] == xv and r.get(key) is not None and r["status"] == "FINISHED"]
                if vals:
                    metrics.append((f"{key}_median/{line.replace(' ', '_').replace('=', '')}", float(np.median(vals)), xv))
    params = {"runs": len(rows), **provenance.flatten({k: prov[k] for k in ("versions", "hardware", "blas", "git")}),
              "blas.threads_pinned": provenance.BLAS_THREADS}
    doc = {"experiment": study.experiment, "study": g.study, "axes": g.axes, "fixed": g.fixed, **timing, "runs": rows}
    failed = sum(r["status"] != "FINISHED" for r in rows)
    note = (f"Sweep of {g.study} over {g.text()}: {len(rows)} runs, {failed} failed.\n\nsweep.png (Artifacts) draws "
            f"{key} per line against the grid; sweep.json holds one row per child; each child holds exactly what "
            f"`{g.study}` records alone for its config, its description says what happened. The medians "
            f"`{key}_median/<line>` have step = the grid's {x or 'x'} (not a training step), one chart each with its "
            "own y range here; the charts view linked below draws them together on one log axis.")
    record(tracker, rid, params, metrics, {
        "sweep.json": write_text(results.dumps(doc)),
        "sweep.png": lambda path: plots.sweep_summary(rows, path, g.axes, study.sweep.panels,
                                                      title=f"Sweep ({g.study}): {g.text()}"),
    }, {tracking.NOTE_TAG: note})
