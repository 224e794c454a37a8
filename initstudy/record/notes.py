"""A run's description (`mlflow.note.content`): one line on what happened, then how to read the run.

Each study writes its own (studies/<study>/record.py: note); what they share is here. Pure: results
in, markdown text out. MLflow 3.17 keeps a chart layout on the server only for the experiment's shared
views, not for a run's page, so a description points at the PNG that overlays measured and theory.
"""
import numpy as np


def held(artifacts) -> str:
    """What a sweep's child holds (its figures are the sweep parent's sweep.png)."""
    return f"This run holds {', '.join(artifacts)}; the sweep's figure is its parent's sweep.png."


def run_name(kind: str, config, init: str | None = None) -> str:
    """A parent's name by what differs from the defaults: `walk tanh orthogonal,lecun_normal`, `ablate steps 30`
    (a text value as it is, a number after its field's name); `init` where it is not all."""
    from dataclasses import fields

    from initstudy.core.config import parse

    default = parse(type(config), {})  # resolved as the config is (0 = the dataset's shape, presets)
    words = [str(v) if isinstance(v, str) else f"{f.name} {v:g}" if isinstance(v, float) else f"{f.name} {v}"
             for f in fields(config) if (v := getattr(config, f.name)) != getattr(default, f.name) and v != ""]
    return " ".join([kind, *words, *([init] if init not in (None, "all") else [])])


def g(x) -> str:
    """A number in a description: 3 significant digits, n/a where there is none."""
    return "n/a" if x is None or not np.isfinite(x) else f"{x:.3g}"
