"""What the init ablation records: its experiment's description, a run's, losses.json (and its series read
back), the manifest's results_summary, a sweep child's row."""
import numpy as np

from initstudy.record import keys, labs, results
from initstudy.record.notes import g as _g, held
from initstudy.record.results import from_json, jsonable, lsuv_block
from initstudy.studies import STUDIES

ASKS = (
    "**Lab 01, init matters.** A 12-layer ReLU MLP trained on the same synthetic data under each init: "
    "which inits train, which diverge (NaN) or flatline, and why, seen layer by layer. Each command is a "
    f"parent run (`ablate`) with one child per init (or one run with `-P init=...`). `{keys.SERIES['loss']}` is "
    f"the loss every step, `{keys.SERIES['val_loss']}` and `{keys.SERIES['val_acc']}` every `eval_every` steps; "
    f"`<stat>/Lnn` are the makemore diagnostics per layer over training and `{keys.profile('<stat>', 'init')}|end` "
    "their depth profile (step = layer index). A diverged run's series stop at the last finite point; "
    "its `steps_to_nan` and outcome tag say where, and it has no `final_loss`.")
VIEW = labs.View(  # the shared chart view: headline curves first, in log y
    "Lab 01, init matters: the same 12-layer ReLU network trained under each init; which train, which stall "
    "near chance, which diverge?",
    (((keys.SERIES["loss"],), True), ((keys.SERIES["val_loss"],), True), ((keys.SERIES["val_acc"],), False)),
    labs.PER_LAYER)
SWEEP_MEDIAN = "final_loss"  # its sweeps' view: sweep.png's first panel


def ablate_line(r) -> str:
    """e.g. 'uniform: diverged at step 2, loss 1.1e+06 → 7.6e+33 → NaN'."""
    if r.steps_to_nan is not None:
        finite = [_g(v) for v in r.losses[: r.steps_to_nan]]
        path = " → ".join(finite[:3] + (["…"] if len(finite) > 3 else []) + ["NaN"])
        return f"{r.init}: diverged at step {r.steps_to_nan}, loss {path}"
    what = {"flatlined": f"flatlined from step {r.flatline_step}", "stalled": "stalled near chance"}.get(r.outcome,
                                                                                                   r.outcome)
    return (f"{r.init}: {what}, loss {_g(r.initial_loss)} → {_g(r.final_loss)} (ln classes = "
            f"{_g(r.expected_initial_loss)}), val acc {_g(r.final_val_acc)}")


def note(group, child: bool, artifacts=None) -> str:
    """artifacts: the names a sweep's child holds (None: the run's own figures are there)."""
    lines = [ablate_line(r) for r in group]
    how = (f"Read: *Model metrics* opens on `{keys.SERIES['loss']}` and the validation curves; the lowercase "
           f"sections are the per-layer statistics (`<stat>/Lnn` over training for the first, middle and last block, "
           f"every block's in diagnostics.json; `{keys.profile('<stat>', 'init')}"
           "|end` across depth). " + (held(artifacts) if artifacts is not None else "loss_curves.png overlays the inits"
           + ("; diagnostics.png shows this init's layers." if child else
              f"; each child holds one init; `{keys.FINDING}` holds each init's outcome in numbers.")))
    return "  \n".join(lines) + "\n\n" + how


def sweep_row(r) -> dict:
    return {"outcome": r.outcome, "steps_to_nan": r.steps_to_nan, "final_loss": results.jsonable([r.final_loss])[0]}


def ablate_summary(group) -> dict:
    """The lab's results_summary: steps_to_nan_<init>, final_loss_<init> (null where none)."""
    out = {}
    for r in group:
        out[f"steps_to_nan_{r.init}"] = r.steps_to_nan
        out[f"final_loss_{r.init}"] = results.jsonable([r.final_loss])[0]
        out[f"outcome_{r.init}"] = r.outcome
    return out


# --- the results document

def ablate_json(config: dict, results) -> dict:
    """losses.json of lab 01: every step's loss, the val points and the outcome per init."""
    out = {"experiment": STUDIES["ablate"].experiment, "config": config, "inits": {}}
    for r in results:
        out["inits"][r.init] = {
            "weight_seed": r.weight_seed,
            "outcome": r.outcome,
            "steps_to_nan": r.steps_to_nan,
            "flatline_step": r.flatline_step,
            "loss": jsonable(r.losses),
            "val": {"step": [int(s) for s in r.val_steps], "loss": jsonable(r.val_loss), "acc": jsonable(r.val_acc)},
            "summary": {k: v if v is None or isinstance(v, int) else jsonable([v])[0] for k, v in r.summary().items()},
            **lsuv_block(r),
        }
    return out


def ablate_series(doc: dict) -> dict:
    """{'<init>/<series>': array} from a losses.json document, for comparison."""
    out = {}
    for init, block in doc["inits"].items():
        out[f"{init}/loss"] = from_json(block["loss"])
        out[f"{init}/val_step"] = np.array(block["val"]["step"], float)
        out[f"{init}/val_loss"] = from_json(block["val"]["loss"])
        out[f"{init}/val_acc"] = from_json(block["val"]["acc"])
    return out
