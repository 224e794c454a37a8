"""`sweep`: a grid of ablate (or walk) runs, inits x depths x seeds, nested under one parent run.

The parent opens every run before a worker starts (several processes creating a fresh SQLite
schema at once crash). A pool of worker processes, started once, computes: pure numerics, BLAS
pinned to one thread, no MLflow import (it costs seconds). The parent records each result as it
comes back, one batched log call per run: one writer, so no SQLite lock contention between workers.
A child's numbers are those of the same config run alone: same config, same seeds, same 1-thread BLAS.
"""
import multiprocessing
from dataclasses import dataclass
import sys
import time
from multiprocessing.connection import wait

import numpy as np

from initstudy import ablate as ablate_mod
from initstudy import inits, labs, manifest, parallel, plots, provenance, results, tracking
from initstudy import walk as walk_mod
from initstudy.config import ConfigError, one_of, parse, to_dict
from initstudy.jobs import JobFailed, common_params, record, run_set, today, write_text
from initstudy.jobs import ablate as ablate_job

HELP = "a grid of ablate (or walk) runs: inits x depths x seeds, in a pool of worker processes"
STUDIES = {"ablate": ablate_mod.AblateConfig, "walk": walk_mod.WalkConfig}
EXPERIMENTS = {"ablate": ablate_mod.EXPERIMENT, "walk": walk_mod.EXPERIMENT}
MAX_WORKERS = 64


def add_arguments(parser):
    parser.add_argument("--inits", default="uniform,xavier,kaiming", help="comma-separated init schemes")
    parser.add_argument("--depths", default="6,12,24", help="comma-separated depths")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated weight seeds")
    parser.add_argument("--workers", default="2", help=f"worker processes, 1..{MAX_WORKERS}")
    parser.add_argument("--study", default="ablate", help="ablate or walk")
    parser.add_argument("--steps", default="", help="training steps (ablate); empty: the ablate default")
    parser.add_argument("--tracking-uri", "--tracking_uri", dest="tracking_uri", default=None)


def _items(name: str, raw: str, example: str) -> list[str]:
    items = [x.strip() for x in str(raw).split(",") if x.strip()]
    if not items:
        raise ConfigError(f"{name} must list at least one value, comma-separated (e.g. {example}); got {raw!r}")
    return list(dict.fromkeys(items))


def grid(args) -> tuple[str, list, int]:
    """(study, [(label, init, config)], workers), every value validated before anything starts."""
    study = str(args.study).strip()
    one_of("study", study, tuple(STUDIES))
    cls = STUDIES[study]
    names = _items("inits", args.inits, "uniform,xavier,kaiming")
    for n in names:
        one_of("init", n, tuple(inits.INITS))
    depths = _items("depths", args.depths, "6,12,24")
    seeds = _items("seeds", args.seeds, "0,1,2")
    workers = parse(_Workers, {"workers": args.workers}).workers
    extra = {}
    if str(args.steps or "").strip():
        if study != "ablate":
            raise ConfigError(f"steps applies to study=ablate only; got steps={args.steps!r} with study={study}")
        extra["steps"] = args.steps
    points = []
    for init in names:
        for d in depths:
            for s in seeds:
                config = parse(cls, {"depth": d, "seed": s, **extra})
                points.append((f"{init}-d{config.depth}-s{config.seed}", init, config))
    return study, points, workers


@dataclass(frozen=True)
class _Workers:  # parsed like a config, so a bad value gets the same one-line message
    workers: int = 2

    def validate(self):
        if not 1 <= self.workers <= MAX_WORKERS:
            raise ConfigError(f"workers must be in 1..{MAX_WORKERS}, got {self.workers}")


def main(args):
    study, points, workers = grid(args)
    out = run(study, points, workers, args.tracking_uri)
    failed = [label for label, row in zip((p[0] for p in points), out["rows"]) if row["status"] != "FINISHED"]
    print(f"sweep: logged run {out['run_ids']['top']}: {len(points)} runs, {len(failed)} failed, "
          f"{out['wall_seconds']:.1f} s with {workers} workers\n  mlflow ui: {out['link']}")


# ---- the workers: numerics only ----

def compute(study: str, config, init: str):
    return ablate_mod.train(config, init) if study == "ablate" else walk_mod.run_walk(config, init)


def _worker(conn):
    parallel.start_worker()
    blas = provenance.blas()  # what this worker computes with, recorded on its children
    while (task := conn.recv()) is not None:
        i, study, config, init = task
        try:
            conn.send((i, (compute(study, config, init), blas), None))
        except Exception as e:  # a numerics error fails this child only
            conn.send((i, None, f"{type(e).__name__}: {e}"))


class Pool:
    """n spawned worker processes, each fed one task at a time over its own pipe. A worker that dies
    fails the task it held (and is replaced while tasks remain); the others carry on."""

    def __init__(self, n: int):
        self.ctx = multiprocessing.get_context("spawn")
        self.workers = [self._start() for _ in range(n)]

    def _start(self):
        here, there = self.ctx.Pipe()
        proc = self.ctx.Process(target=_worker, args=(there,), daemon=True)
        proc.start()
        there.close()
        return {"proc": proc, "conn": here, "task": None}

    def pids(self) -> list[int]:
        return [w["proc"].pid for w in self.workers]

    def map(self, tasks):
        """Yield (index, result, error) as tasks finish, in completion order."""
        todo = list(tasks)
        while todo or any(w["task"] is not None for w in self.workers):
            for w in self.workers:
                if w["task"] is None and todo:
                    w["task"] = todo.pop(0)
                    try:
                        w["conn"].send(w["task"])
                    except OSError:  # died idle: the sentinel below reports it
                        pass
            busy = [w for w in self.workers if w["task"] is not None]
            ready = wait([w["conn"] for w in busy] + [w["proc"].sentinel for w in busy])
            for w in busy:
                if w["conn"] not in ready and w["proc"].sentinel not in ready:
                    continue
                try:
                    if w["conn"].poll():
                        i, res, err = w["conn"].recv()
                        w["task"] = None
                        yield i, res, err
                        continue
                except (EOFError, OSError):
                    pass
                w["proc"].join(1)
                if w["proc"].is_alive():
                    continue
                i = w["task"][0]
                yield i, None, f"worker process {w['proc'].pid} died (exit code {w['proc'].exitcode})"
                self.workers[self.workers.index(w)] = self._start() if todo else {**w, "task": None, "dead": True}
            self.workers = [w for w in self.workers if not w.get("dead")]

    def close(self):
        for w in self.workers:
            try:
                w["conn"].send(None)
            except OSError:
                pass
        for w in self.workers:
            w["proc"].join(5)
            if w["proc"].is_alive():
                w["proc"].terminate()
                w["proc"].join(5)

    def terminate(self):
        for w in self.workers:
            if w["proc"].is_alive():
                w["proc"].terminate()
        for w in self.workers:
            w["proc"].join(5)


# ---- the parent: runs, recording, summary ----

def _child_record(study, config, r, prov, date, mlflow_ids):
    """(params, metrics, tags, artifacts) of one child: what the same config run alone records."""
    cfg = to_dict(config)
    params = common_params(cfg, prov, init=r.init, weight_seed=r.weight_seed)
    if study == "ablate":
        summary = ablate_job.ablate_summary([r])
        metrics = ablate_job._ablate_metrics(r)
        tags = {tracking.OUTCOME_TAG: r.outcome}
        seeds = {**config.stream_seeds(), f"weights/{r.init}": r.weight_seed}
        doc = results.ablate_json(cfg, [r])
        name = "losses.json"
    else:
        from initstudy.jobs import walk as walk_job  # here: a sweep's parse loads only the ablate job (tests/test_cli.py)

        summary = walk_job.lab_summary([r])
        params.update(walk_job.child_params(config, r))
        metrics = walk_job.child_metrics(r)
        tags = walk_job.child_tags(r)
        seeds = walk_job.manifest_seeds(config, [r])
        doc = results.walk_json(cfg, [r])
        name = "results.json"
    mf = manifest.build(experiment=EXPERIMENTS[study], date=date, seed=config.seed, provenance=prov, config=cfg,
                        inits=[r.init], seeds=seeds, results_summary=summary, mlflow=mlflow_ids)
    artifacts = {name: write_text(results.dumps(doc)), "manifest.json": write_text(manifest.dumps(mf))}
    return params, metrics, tags, artifacts


def _row(study, label, init, config, rid, r, error):
    row = {"label": label, "init": init, "depth": config.depth, "seed": config.seed, "run_id": rid,
           "status": "FAILED" if error else "FINISHED", "error": error}
    if r is not None and study == "ablate":
        row.update(outcome=r.outcome, steps_to_nan=r.steps_to_nan, final_loss=results.jsonable([r.final_loss])[0])
    elif r is not None:
        sat = np.flatnonzero(r.saturated)
        row.update(final_layer_variance=results.jsonable([r.var[-1]])[0],
                   saturated_from_layer=int(sat[0]) if len(sat) else None)
    return row


def _progress(done, failed, total, t0):
    elapsed = time.perf_counter() - t0
    eta = elapsed / done * (total - done) if done else float("nan")
    print(f"sweep: {done}/{total} runs done ({failed} failed), elapsed {elapsed:.1f} s, ETA {eta:.0f} s",
          file=sys.stderr, flush=True)


def run(study: str, points: list, workers: int = 2, tracking_uri: str | None = None) -> dict:
    """Open the parent and every child, compute in `workers` processes, record as results arrive."""
    tracker = tracking.Tracker(tracking_uri)
    labels = [p[0] for p in points]
    child_tags = {label: {tracking.INIT_TAG: init, "initstudy.depth": c.depth, "initstudy.seed": c.seed}
                  for label, init, c in points}
    spec = {"study": study, "inits": ",".join(dict.fromkeys(p[1] for p in points)),
            "depths": ",".join(dict.fromkeys(str(p[2].depth) for p in points)),
            "seeds": ",".join(dict.fromkeys(str(p[2].seed) for p in points)), "workers": workers,
            "runs": len(points)}
    with run_set(tracker, EXPERIMENTS[study], "sweep", labels, tags={"initstudy.sweep": study},
                 child_tags=child_tags, record_in=labs.sweep_experiment(EXPERIMENTS[study])) as ids:
        prov, date = provenance.collect(), today()
        experiment_id = tracker.client.get_run(ids["top"]).info.experiment_id
        rows = [None] * len(points)
        t0 = time.perf_counter()
        pool = Pool(min(workers, len(points)))
        print(f"sweep: {len(points)} runs in {len(pool.workers)} worker processes (pids {pool.pids()})",
              file=sys.stderr, flush=True)
        try:
            done = failed = 0
            for i, got, error in pool.map([(i, study, c, init) for i, (_, init, c) in enumerate(points)]):
                label, init, config = points[i]
                rid = ids[label]
                r, blas = got or (None, None)
                if error is None:
                    mlflow_ids = {"tracking_uri": tracking.redact_uri(tracker.uri), "experiment_id": experiment_id,
                                  "parent_run_id": ids["top"], "run_ids": {init: rid}}
                    params, metrics, tags, artifacts = _child_record(study, config, r, {**prov, "blas": blas}, date,
                                                                    mlflow_ids)
                    record(tracker, rid, params, metrics, artifacts, tags)
                else:
                    tracker.log(rid, params=common_params(to_dict(config), prov), tags={"initstudy.error": error[:500]})
                    failed += 1
                status = "FAILED" if error else "FINISHED"
                tracker.end(rid, status)
                ids.closed[rid] = status
                rows[i] = _row(study, label, init, config, rid, r, error)
                done += 1
                _progress(done, failed, len(points), t0)
            pool.close()
        finally:
            pool.terminate()
        wall = time.perf_counter() - t0
        _record_parent(tracker, ids["top"], study, spec, rows, prov, wall)
        if failed:
            raise JobFailed(f"{failed} of {len(points)} sweep runs failed: "
                            + ", ".join(f"{r['label']} ({r['error']})" for r in rows if r["error"]))
        link = tracker.ui_link(ids["top"])
    return {"run_ids": ids, "rows": rows, "wall_seconds": wall, "link": link}


def _record_parent(tracker, rid, study, spec, rows, prov, wall):
    """sweep.json (one row per child), sweep.png, and per-init medians against depth as metrics."""
    key = "final_loss" if study == "ablate" else "final_layer_variance"
    metrics = [("runs_failed", sum(r["status"] != "FINISHED" for r in rows), 0), ("wall_seconds", wall, 0)]
    for init in dict.fromkeys(r["init"] for r in rows):
        for depth in sorted({r["depth"] for r in rows}):
            vals = [r[key] for r in rows if r["init"] == init and r["depth"] == depth and r.get(key) is not None]
            if vals:
                metrics.append((f"{key}_median/{init}", float(np.median(vals)), depth))
    params = {**{f"sweep.{k}": v for k, v in spec.items()}, **provenance.flatten(
        {k: prov[k] for k in ("versions", "hardware", "blas", "git")}), "blas.threads_pinned": provenance.BLAS_THREADS}
    doc = {"experiment": EXPERIMENTS[study], "sweep": spec, "wall_seconds": wall, "runs": rows}
    title = f"Sweep ({study}): {spec['inits']} x depths {spec['depths']} x seeds {spec['seeds']}"
    record(tracker, rid, params, metrics, {
        "sweep.json": write_text(results.dumps(doc)),
        "sweep.png": lambda path: plots.sweep_summary(rows, path, study, title=title),
    })
