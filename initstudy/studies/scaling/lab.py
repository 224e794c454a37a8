"""Lab 02's folder (projects/02-why-sqrt-n): one run is the study; scaling.png re-drawn from results.json."""
from initstudy.core.config import to_dict
from initstudy.studies import Lab
from initstudy.studies.scaling import compute as scaling
from initstudy.studies.scaling.record import scaling_json, scaling_series


def draw(doc: dict, path):
    from initstudy.studies.scaling import figures

    figures.scaling(doc, path, title=scaling.title(doc["config"]))


def rerun(config, names) -> tuple[dict, dict]:
    doc = scaling_json(to_dict(config), scaling.run_scaling(config))
    return doc, doc["summary"]


LAB = Lab("run", "results.json", "dot", "scaling.png", draw, "why_sqrt_n.py", "lab 02, why 1/sqrt(n)",
          config=scaling.ScalingConfig, seeds=lambda config, names, recorded=(): config.stream_seeds(), rerun=rerun,
          series=scaling_series)
