"""Lab 02's folder (projects/02-why-sqrt-n): one run is the study; scaling.png re-drawn from results.json."""
from initstudy.core.config import to_dict
from initstudy.record import results
from initstudy.studies import Lab
from initstudy.studies.scaling import compute as scaling


def draw(doc: dict, path):
    from initstudy.record import plots

    plots.scaling(doc, path, title=scaling.title(doc["config"]))


def rerun(config, names) -> tuple[dict, dict]:
    doc = results.scaling_json(to_dict(config), scaling.run_scaling(config))
    return doc, doc["summary"]


LAB = Lab("run", "results.json", "dot", "scaling.png", draw, "why_sqrt_n.py", "lab 02, why 1/sqrt(n)",
          config=scaling.ScalingConfig, seeds=lambda config, names, recorded=(): config.stream_seeds(), rerun=rerun,
          series=results.scaling_series)
