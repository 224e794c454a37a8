"""Lab 00's folder (projects/10-variance-walk): the figure re-drawn from results.json, the re-run and
what a document recorded before the signal-propagation block (or its mean series) is compared on."""
from types import SimpleNamespace

from initstudy.core.config import to_dict
from initstudy.studies import Lab
from initstudy.studies.walk import compute as walk
from initstudy.studies.walk.record import SIGNAL_SERIES, SIGNAL_SERIES_LATER, lab_summary, walk_json, walk_series

SAME_SHAPE = ("depth", "width", "batch", "input_variance", "dtype", "seed", "sigma_b2", "gain")


def draw(doc: dict, path):
    from initstudy.studies.walk import figures

    c = doc["config"]
    series = walk_series(doc)
    rs = []
    for init in doc["inits"]:
        s = {k.split("/", 1)[1]: v for k, v in series.items() if k.split("/", 1)[0] == init}
        signal = SimpleNamespace(**{k: s[k] for k in SIGNAL_SERIES if k in s}) if "corr" in s else None
        rs.append(SimpleNamespace(init=init, var=s["var"], var_theory=s["var_theory"],
                                  saturated=s["saturated"].astype(bool), signal=signal))
    title = f"Variance walk: {c['depth']} x {c['width']} {c['activation']}, batch {c['batch']}, {c['dtype']}"
    figures.variance_walk(rs, path, title=title)


def seeds(config, names, recorded=()) -> dict:
    base = {"input": config.input_seed()}
    if "pairs" in recorded:  # a walk recorded with its signal-propagation streams (older ones have none)
        base.update(config.stream_seeds())
        if config.sigma_b2 > 0:
            base.update({f"biases/{i}": config.bias_seed(i) for i in names})
    return {**base, **{f"weights/{i}": config.weight_seed(i) for i in names}}


def rerun(config, names) -> tuple[dict, dict]:
    rs = [walk.run_walk(config, i) for i in names]
    return walk_json(to_dict(config), rs), lab_summary(rs)


def align(doc: dict, now_doc: dict) -> tuple[dict, dict, str | None]:
    """A walk recorded before the signal block, or before some of its series: what it holds is
    compared, and the note says what was left out."""
    if "signal" not in doc and now_doc.pop("signal", None) is not None:
        return now_doc, walk_series(now_doc), \
            "(recorded before the walk's signal-propagation block: lab 00's series and values compared)"
    rec, now = walk_series(doc), walk_series(now_doc)
    later = sorted(k for k in now if k not in rec and k.rsplit("/", 1)[-1] in SIGNAL_SERIES_LATER)
    for k in later:  # a walk recorded before these series: they are new, not a difference
        del now[k]
    note = (f"(recorded before the walk's {', '.join(sorted({k.rsplit('/', 1)[-1] for k in later}))} series: "
            "the others compared)") if later else None
    return now_doc, now, note


def prefer(params: dict) -> bool:
    return params.get("activation") == "linear"  # the lab's setup


def companion(params: dict, other: dict) -> bool:
    """For a linear walk: a ReLU walk of the same shape and seed (lab 00's bonus, quoted in the README)."""
    return (params.get("activation") == "linear" and other.get("activation") == "relu"
            and all(other.get(k) == params.get(k) for k in SAME_SHAPE))


LAB = Lab("inits", "results.json", "inits", "variance.png", draw, "walk.py", "lab 00, the variance walk",
          config=walk.WalkConfig, seeds=seeds, rerun=rerun, series=walk_series, align=align,
          prefer=prefer, companion=companion)
