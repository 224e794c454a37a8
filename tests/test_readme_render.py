"""Every committed lab folder's README.md is publish.readme.render of its own results document and manifest,
byte for byte: the study's numbers() filled into its readme.md.j2."""
import importlib
import json
import pkgutil
from pathlib import Path

import jinja2
import pytest

from conftest import REPO
from initstudy import studies
from initstudy.publish import readme

pytestmark = pytest.mark.fast

FOLDERS = sorted(p for p in (REPO / "projects").iterdir() if (p / "manifest.json").exists())


def study_of(experiment: str) -> str:
    """The study folder (initstudy/studies/<name>/) whose experiment this is."""
    names = [m.name for m in pkgutil.iter_modules(studies.__path__) if m.ispkg]
    found = [n for n in names if importlib.import_module(f"initstudy.studies.{n}.compute").EXPERIMENT == experiment]
    assert len(found) == 1, f"{experiment}: studies {found}"
    return found[0]


def committed(folder: Path):
    """(results document, manifest) of a lab folder: its one results JSON beside manifest.json."""
    (results,) = [p for p in folder.glob("*.json") if p.name != "manifest.json"]
    return json.loads(results.read_text()), json.loads((folder / "manifest.json").read_text())


@pytest.mark.parametrize("folder", FOLDERS, ids=[f.name for f in FOLDERS])
def test_committed_readme_is_its_template_filled_from_its_results(folder):
    doc, mf = committed(folder)
    name = study_of(mf["experiment"])
    assert (REPO / "initstudy" / "studies" / name / "readme.md.j2").exists(), f"{name} has no README template"
    ours, theirs = readme.render(name, doc, mf), (folder / "README.md").read_text()
    if name == "walk":  # it quotes the ReLU walk exported beside it, a run not committed here (test_export
        # exports one for real): that one line is the committed one, every other byte is ours
        relu = [l for l in theirs.splitlines() if l.startswith("Measured with ReLU (walk run `")]
        ours = ours.replace(next(l for l in ours.splitlines() if l.startswith("No ReLU walk was exported")), *relu)
    assert ours == theirs


def test_every_study_readme_is_package_data():
    """pyproject ships each study's template in the wheel (`pip install .` renders READMEs too)."""
    text = (REPO / "pyproject.toml").read_text()
    assert '[tool.setuptools.package-data]\n"*" = ["*.j2"]' in text
    assert {p.parent.name for p in (REPO / "initstudy" / "studies").glob("*/readme.md.j2")} >= {
        study_of(committed(f)[1]["experiment"]) for f in FOLDERS}


def test_a_number_the_template_states_but_numbers_lacks_is_an_error():
    """StrictUndefined: a template never prints an empty string where a number was meant to be."""
    doc, mf = committed(REPO / "projects" / "02-why-sqrt-n")
    module = readme.study_readme("scaling")
    numbers = module.numbers(doc, mf)
    del numbers["log_drift"]
    template = readme._templates(str(Path(module.__file__).parent)).get_template("readme.md.j2")
    with pytest.raises(jinja2.UndefinedError, match="log_drift"):
        template.render(numbers, manifest=mf)
