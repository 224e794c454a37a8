"""`diagnose` (lab 03): the makemore activations/gradients/BatchNorm study on a names corpus, one run."""
import hashlib

import numpy as np

from initstudy.core import data, inits

from initstudy.record import keys, manifest, progress, provenance, results, tracking
from initstudy.studies.diagnose import compute as diagnose_mod
from initstudy.core.config import ConfigError, one_of, to_dict
from initstudy.studies import STUDIES
from initstudy.studies.diagnose import figures
from initstudy.studies.diagnose.record import note
from initstudy.studies.diagnose.compute import DiagnoseConfig
from initstudy.run.runs import (add_common_arguments, common_params, config_from_args, depth_profiles, finish, layer_series,
                            mlflow_block, record, run_set, summary_metrics, today, write_text)

EXPERIMENT = STUDIES["diagnose"].experiment
HELP = "lab 03: char-level MLP on a names corpus: activations, gradients, BatchNorm"
DEFAULT_INIT = "xavier"  # N(0, 1/fan_in): the notebook's randn / sqrt(fan_in), times the gain


def add_arguments(parser):
    add_common_arguments(parser, DiagnoseConfig)
    parser.set_defaults(init=DEFAULT_INIT)


def main(args):
    one_of("init", args.init, tuple(inits.INITS))  # one model per run: no `all` here
    if inits.INITS[args.init].needs_data:
        raise ConfigError(f"init {args.init} is data-dependent and diagnose does not rescale on a batch; "
                          f"allowed: {', '.join(i for i in inits.INITS if not inits.INITS[i].needs_data)}")
    config = config_from_args(DiagnoseConfig, args)
    words = data.names_corpus(config.words_file)  # a bad file is refused before MLflow starts
    out = run(config, args.init, args.tracking_uri, words)
    r = out["result"]
    print(f"diagnose: logged run {out['run_id']}: initial loss {r.initial_loss:.4f} "
          f"(uniform {r.expected_initial_loss:.4f}), train {r.train_loss:.4f}, dev {r.dev_loss:.4f}\n  mlflow ui: {out['link']}")


def corpus_info(config, words) -> dict:
    text = "\n".join(words) + "\n"
    builtin = config.words_file in ("", data.BUILTIN_CORPUS)
    return {"corpus": "names-0.3.0:dist.male.first+dist.female.first" if builtin else config.words_file,
            "corpus_words": len(words), "corpus_sha256": hashlib.sha256(text.encode()).hexdigest()}


def metrics_of(r) -> list:
    m = [(keys.series("loss"), v, s) for s, v in enumerate(r.losses)] + layer_series(r.diag_steps, r.diag)
    for stat, series in r.emb_diag.items():  # the embedding C is layer 0
        m += [(keys.layer(stat, 0), v, step) for v, step in zip(series, r.diag_steps)]
    return m + depth_profiles(r.diag) + summary_metrics(r.summary())


def diagnose_json(config: dict, r, corpus: dict) -> dict:
    """results.json of lab 03: every step's loss, the per-layer statistics, the samples."""
    summary = {k: v if v is None or isinstance(v, int) else results.jsonable([v])[0] for k, v in r.summary().items()}
    ds = r.dataset
    return {
        "experiment": EXPERIMENT, "config": config, "init": r.init, "weight_seed": r.weight_seed,
        "corpus": corpus, "vocab": ds.itos,
        "split": {"words": dict(zip(("train", "dev", "test"), ds.n_words)),
                  "examples": {"train": len(ds.y_train), "dev": len(ds.y_dev), "test": len(ds.y_test)}},
        "summary": summary,
        "loss": results.jsonable(r.losses),
        "diag": {"step": [int(s) for s in r.diag_steps],
                 "layers": [f"L{l:02d}" for l in range(1, r.diag["sat"].shape[1] + 1)],
                 **{k: [results.jsonable(row) for row in v] for k, v in r.diag.items()},
                 "embedding": {k: results.jsonable(v) for k, v in r.emb_diag.items()}},
        "samples": r.samples,
    }


def run(config, init: str, tracking_uri: str | None, words) -> dict:
    tracker = tracking.Tracker(tracking_uri)
    cfg = to_dict(config)
    corpus = corpus_info(config, words)
    with provenance.pin_blas_threads(), run_set(tracker, EXPERIMENT, "diagnose", [init]) as ids:
        rid = ids["top"]
        provenance.warm_up_blas()
        digest = tracker.log_dataset(rid, f"corpus-{corpus['corpus_sha256'][:12]}", np.array(words))
        with progress.bar(config.steps, "diagnose", "steps", delay=progress.DELAY) as bar:
            r = diagnose_mod.train(config, init, words, on_step=lambda s: bar.update(1))
        prov, date, mlflow_ids = provenance.collect(), today(), mlflow_block(tracker, ids)
        seeds_ = {**config.stream_seeds(), f"weights/{init}": r.weight_seed}
        params = common_params(cfg, prov, **corpus, dataset_digest=digest, init=init, weight_seed=r.weight_seed,
                               vocab=r.vocab, **{f"seed.{k}": v for k, v in seeds_.items() if k != "data_seed"},
                               **{f"split.{k}": n for k, n in zip(("train", "dev", "test"), r.dataset.n_words)})
        summary = diagnose_json(cfg, r, corpus)["summary"]
        mf = manifest.build(experiment=EXPERIMENT, date=date, seed=config.seed, provenance=prov, config=cfg,
                            inits=[init], seeds=seeds_, results_summary=summary, mlflow=mlflow_ids)
        mf["corpus"] = {**corpus, "dataset_digest": digest}
        label = (f"{inits.INITS[init].label} x gain {config.gain:.4g}, {config.network}, norm {config.norm}, "
                 f"last layer x {config.last_layer_scale:g}, {config.steps} steps")
        tags = {tracking.OUTCOME_TAG: "diverged" if r.steps_to_nan is not None else "trained"}
        record(tracker, rid, params, metrics_of(r), {
            "results.json": write_text(results.dumps(diagnose_json(cfg, r, corpus))),
            "manifest.json": write_text(manifest.dumps(mf)),
            "samples.txt": write_text("\n".join(r.samples) + "\n"),
            "loss.png": lambda path: figures.diagnose_loss(r, path, title=f"loss: {label}"),
            "activations.png": lambda path: figures.diagnose_histograms(r, path, "act", title=f"activations: {label}"),
            "gradients.png": lambda path: figures.diagnose_histograms(r, path, "grad", title=f"gradients: {label}"),
            "saturation_map.png": lambda path: figures.saturation_map(r, path, title=f"|h| > 0.99, first hidden layer: {label}"),
            "update_ratio.png": lambda path: figures.update_ratio(r, path, title=f"update:data ratio: {label}"),
        }, tags)
        link = finish(tracker, ids, {rid: note(r, config)})
    return {"run_id": rid, "result": r, "link": link}
