"""`coordcheck` (lab 30): the coordinate check as one run: coord.csv (mup's columns), coord.png, coord.json
(every slope with its claim) and the slopes as metrics `slope_<param>_<module>` (step = t)."""
import csv
import io

from initstudy.core.config import to_dict
from initstudy.record import manifest, provenance, results, tracking
from initstudy.run.runs import (add_common_arguments, common_params, finish, mlflow_block, parsed_config, record,
                                run_set, today, write_text)
from initstudy.studies.coordcheck import compute as C
from initstudy.studies.coordcheck.compute import EXPERIMENT, CoordConfig

HELP = "lab 30: the coordinate check (mup's get_coord_data): l1 of every layer against width, SP vs muP"
NAME = "coordcheck"
COLUMNS = ("width", "module", "t", "l1", "param", "optimizer", "lr", "seed")  # mup's, then ours


def add_arguments(parser):
    add_common_arguments(parser, CoordConfig, init=False)


def main(args):
    config = parsed_config(CoordConfig, args)  # init: a field here, checked by validate()
    out = run(config, args.tracking_uri)
    v = out["doc"]["verdict"]
    print(f"coordcheck: logged run {out['run_ids']['top']}: {v['claims_held']} of {v['claims']} theory claims hold"
          f"{'' if v['agrees'] else ' (see coord.json: holds false)'}\n  mlflow ui: {out['link']}")


def csv_text(rows: list) -> str:
    """coord.csv: one row per (width, module, t, seed, param), l1 as repr (exact)."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, COLUMNS, lineterminator="\n")
    w.writeheader()
    w.writerows({k: r[k] for k in COLUMNS} for r in rows)
    return buf.getvalue()


def metrics(v: dict) -> list:
    """slope_<param>_<module> and slope_sd_<param>_<module> at step t; the claims' count."""
    out = []
    for s in v["slopes"]:
        if s["zero"]:  # no slope: every l1 is 0 (muP's zero readout at t = 1)
            continue
        out += [(f"slope_{s['param']}_{s['module']}", s["slope"], s["t"]),
                (f"slope_sd_{s['param']}_{s['module']}", s["slope_sd"], s["t"])]
    return out + [("claims", v["claims"], 0), ("claims_held", v["claims_held"], 0), ("agrees", int(v["agrees"]), 0)]


def document(config: CoordConfig, rows: list) -> dict:
    return {"experiment": EXPERIMENT, "config": to_dict(config), "modules": C.modules(config.depth),
            "widths": config.width_list(), "predictions": {"flat": f"|slope| < {C.FLAT}",
                                                          "shrinks": f"|slope + 0.5| < {C.FLAT}",
                                                          "grows": f"slope > {C.GROWS}",
                                                          "zero": "every l1 exactly 0"},
            "verdict": C.verdict(rows, config.optimizer, config.mup_readout)}


def run(config: CoordConfig, tracking_uri: str | None = None) -> dict:
    from initstudy.studies.coordcheck import plots

    tracker = tracking.Tracker(tracking_uri)
    cfg = to_dict(config)
    with provenance.pin_blas_threads(), run_set(tracker, EXPERIMENT, NAME, [NAME]) as ids:
        provenance.warm_up_blas()
        rows = C.run(config)
        doc = document(config, rows)
        prov = provenance.collect()
        mf = manifest.build(experiment=EXPERIMENT, date=today(), seed=config.seed_list()[0], provenance=prov,
                            config=cfg, inits=[config.init], seeds={"data_seed": config.data_seed},
                            results_summary={k: doc["verdict"][k] for k in ("claims", "claims_held", "agrees")},
                            mlflow=mlflow_block(tracker, ids))
        record(tracker, ids["top"], common_params(cfg, prov), metrics(doc["verdict"]), {
            "coord.csv": write_text(csv_text(rows)),
            "coord.json": write_text(results.dumps(doc)),
            "coord.png": lambda path: plots.coord(rows, doc, path),
            "manifest.json": write_text(manifest.dumps(mf)),
        })
        link = finish(tracker, ids, {ids["top"]: description(doc)})
    return {"run_ids": ids, "doc": doc, "rows": rows, "link": link}


def description(doc: dict) -> str:
    v, c = doc["verdict"], doc["config"]
    bad = [f"{s['param']} {s['module']} t={s['t']} slope {s['slope']:+.2f} (predicted {s['predicted']})"
           for s in v["slopes"] if s["holds"] is False]
    return (f"Coordinate check, {c['optimizer']} at lr {c['lr']:g}: {v['claims_held']} of {v['claims']} theory "
            f"claims hold" + (f"; not: {'; '.join(bad)}" if bad else "") + ".\n\ncoord.png: a panel per t, log2 l1 "
            "against log2 width, SP left, muP right (mup's plot_coord_data); coord.csv holds every point; the "
            "metrics slope_<param>_<module> are the fitted slopes with step = t.")
