"""Lab 01's folder (projects/10-init-matters): the loss curves re-drawn from losses.json and the re-run."""
from initstudy.core import inits
from initstudy.core.config import to_dict
from initstudy.record import provenance, results
from initstudy.studies import Lab
from initstudy.studies.ablate import compute as ablate
from initstudy.studies.ablate.record import ablate_json, ablate_series, ablate_summary


def draw(doc: dict, path):
    from types import SimpleNamespace

    from initstudy.studies.ablate import figures

    c = doc["config"]
    rs = [SimpleNamespace(init=init, losses=results.from_json(b["loss"]), outcome=b["outcome"],
                          steps_to_nan=b["steps_to_nan"], flatline_step=b["flatline_step"],
                          expected_initial_loss=b["summary"]["expected_initial_loss"])
          for init, b in doc["inits"].items()]
    title = (f"Init ablation: {c['depth']}-layer {c['activation']} MLP, width {c['width']}, "
             f"lr {c['lr']:g}, momentum {c['momentum']:g}, batch {c['batch']}, {c['dtype']}")
    figures.loss_curves(rs, path, title=title)


def seeds(config, names, recorded=()) -> dict:
    base = config.stream_seeds()
    if any(inits.INITS[i].needs_data for i in names if i in inits.INITS):  # lsuv's training batch
        base["lsuv_batch"] = config.lsuv_seed()
    return {**base, **{f"weights/{i}": config.weight_seed(i) for i in names}}


def rerun(config, names) -> tuple[dict, dict]:
    provenance.warm_up_blas()
    ds = ablate.dataset(config)
    rs = [ablate.train(config, i, ds) for i in names]
    return ablate_json(to_dict(config), rs), ablate_summary(rs)


LAB = Lab("inits", "losses.json", "inits", "loss_curves.png", draw, "train.py", "lab 01, the init ablation",
          config=ablate.AblateConfig, seeds=seeds, rerun=rerun, series=ablate_series, dataset=ablate.dataset)
