"""Every committed lab folder's README.md is publish.readme.render of its own results document and manifest,
byte for byte: the study's numbers() filled into its readme.md.j2."""
import importlib
import json

import jinja2
import pytest

from conftest import REPO
from initstudy.publish import readme

pytestmark = pytest.mark.fast

STUDIES = ("scaling", "phase", "ablate")  # the studies whose README is a template


def experiments() -> dict:
    return {importlib.import_module(f"initstudy.studies.{s}.compute").EXPERIMENT: s for s in STUDIES}


def committed(folder):
    """(results document, manifest) of a lab folder: its one results JSON beside manifest.json."""
    (results,) = [p for p in folder.glob("*.json") if p.name != "manifest.json"]
    return json.loads(results.read_text()), json.loads((folder / "manifest.json").read_text())


@pytest.mark.parametrize("experiment", sorted(experiments()))
def test_committed_readme_is_its_template_filled_from_its_results(experiment):
    folder = REPO / "projects" / experiment
    doc, mf = committed(folder)
    assert readme.render(experiments()[experiment], doc, mf) == (folder / "README.md").read_text()


def test_a_number_the_template_states_but_numbers_lacks_is_an_error():
    """StrictUndefined: a template never prints an empty string where a number was meant to be."""
    folder = REPO / "projects" / "02-why-sqrt-n"
    doc, mf = committed(folder)
    module = readme.study_readme("scaling")
    numbers = module.numbers(doc, mf)
    del numbers["log_drift"]
    template = readme._templates(str(module.__file__).rsplit("/", 1)[0]).get_template("readme.md.j2")
    with pytest.raises(jinja2.UndefinedError, match="log_drift"):
        template.render(numbers, manifest=mf)
