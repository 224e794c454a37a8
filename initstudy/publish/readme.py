"""The lab folders' README.md: a study's numbers, written out by its Jinja2 template (lab 00 Block C, lab 01 Block D).

studies/<study>/readme.py:numbers(doc, manifest) -> dict computes every number and verdict the prose
states (pure: tests pin them); studies/<study>/readme.md.j2 holds the prose. Exact values print with
repr (`|exact`: they equal the runs' metrics bit for bit); prose rounds to 4 significant digits
(`|g`). Where the lab's expectation and the measurement disagree, the text says so. In a template, a
line ending in `{# -#}` continues on the next one (Jinja drops the newline and the indent).
"""
import functools
import math
from pathlib import Path

import jinja2

from initstudy import studies
from initstudy.core import inits


def g(x, digits=4) -> str:
    """Prose: `digits` significant digits; n/a for a missing or non-finite number."""
    return "n/a" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.{digits}g}"


def exact(x) -> str:
    """A metric as recorded: repr, so it equals the run's value bit for bit; None is JSON's null."""
    return "null" if x is None else repr(x)


def _defined(f):
    """A filter that names the missing number (StrictUndefined's error) instead of failing inside f."""
    def filter(x, *args):
        return str(x) if isinstance(x, jinja2.Undefined) else f(x, *args)  # str() raises for StrictUndefined
    return filter


@functools.cache
def _templates(folder: str) -> jinja2.Environment:
    """The study's folder first, then this one (readme_macros.md.j2: what every README says alike)."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader([folder, str(Path(__file__).parent)]),
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                             keep_trailing_newline=True, autoescape=False)
    env.filters.update({k: _defined(f) for k, f in dict(g=g, exact=exact, fmt=format, label=label).items()})
    return env


def study_readme(name: str):
    """The module holding a study's numbers() (the registry's readme); its readme.md.j2 sits beside it."""
    study = studies.STUDIES[name]
    if study.readme is None:
        raise ValueError(f"study {name} has no README (its registry entry names no readme module)")
    return study.part("readme")


def render(name: str, doc: dict, manifest: dict, *args, **extra) -> str:
    """The README.md of study `name` from its results document and manifest (`args`, `extra`: what its
    numbers() takes besides, e.g. walk's ReLU companion)."""
    module = study_readme(name)
    numbers = module.numbers(doc, manifest, *args, **extra)
    env = _templates(str(Path(module.__file__).parent))
    # a study registered at run time may hold its template's text (TEMPLATE) instead of the file
    template = env.from_string(module.TEMPLATE) if hasattr(module, "TEMPLATE") else env.get_template("readme.md.j2")
    return template.render(numbers, manifest=manifest)


def label(init: str) -> str:
    """An init's name as the tables print it (e.g. 'xavier N(0, 1/n)')."""
    return inits.INITS[init].label if init in inits.INITS else init
