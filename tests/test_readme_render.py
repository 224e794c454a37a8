"""Every committed lab folder's README.md is publish.readme.render of its own results document and manifest,
byte for byte: the study's numbers() filled into its readme.md.j2."""
import json
import math
from pathlib import Path

import jinja2
import pytest

from conftest import REPO
from initstudy import studies
from initstudy.publish import readme

pytestmark = pytest.mark.fast

FOLDERS = sorted(p for p in (REPO / "projects").iterdir() if (p / "manifest.json").exists())


def study_of(experiment: str) -> str:
    """The registry's study whose lab is this experiment."""
    study = studies.by_experiment(experiment)
    assert study is not None and study.readme is not None, f"{experiment}: no study with a README in the registry"
    return study.name


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


def test_a_number_the_template_states_but_numbers_lacks_is_an_error():
    """StrictUndefined: a template never prints an empty string where a number was meant to be."""
    doc, mf = committed(REPO / "projects" / "02-why-sqrt-n")
    module = readme.study_readme("scaling")
    numbers = module.numbers(doc, mf)
    del numbers["log_drift"]
    template = readme._templates(str(Path(module.__file__).parent)).get_template("readme.md.j2")
    with pytest.raises(jinja2.UndefinedError, match="log_drift"):
        template.render(numbers, manifest=mf)


def numbers_of(folder: str) -> dict:
    doc, mf = committed(REPO / "projects" / folder)
    return readme.study_readme(study_of(mf["experiment"])).numbers(doc, mf), doc, mf


def test_the_numbers_the_walk_readme_states():
    """Its last layers are the runs' recorded metrics; n·σ_W² = 256·Var(W): 256/12, 1, 2 (lab 00)."""
    m, doc, mf = numbers_of("10-variance-walk")
    for init, expected in (("uniform", 256 / 12), ("xavier", 1), ("kaiming", 2)):
        assert m["inits"][init]["final"] == mf["results_summary"][f"{init}_final_layer_variance"]
        assert m["inits"][init]["n_sigma2"] == pytest.approx(expected, rel=1e-12)
    assert [x["what"] for x in m["inits"].values()] == ["explodes", "holds", "explodes"]
    # the spread after 20 layers of width 256, batch 64: sqrt(sum_l 2 (1 + l/4) / 16384) = sqrt(145/16384)
    assert m["xavier"]["sds"] == pytest.approx(abs(math.log(m["inits"]["xavier"]["final"])) / math.sqrt(145 / 16384))


def test_the_numbers_the_ablate_readme_states():
    """Xavier leaves the ln 2 plateau where a running mean written out here says; the ratio of finals is the
    recorded metrics'; uniform's finite losses are the ones before its NaN."""
    m, doc, mf = numbers_of("10-init-matters")
    losses = [math.nan if v is None else v for v in doc["inits"]["xavier"]["loss"]]
    means = [sum(losses[i - 49:i + 1]) / 50 for i in range(49, len(losses))]
    exits = [next(i + 49 for i, v in enumerate(means) if v < math.log(2) - margin) for margin in (0.005, 0.02)]
    assert (m["xavier"]["leaves"], m["xavier"]["leaves_band"]) == tuple(exits) == (576, 937)
    s = mf["results_summary"]
    assert m["versus"]["ratio"] == s["final_loss_xavier"] / s["final_loss_kaiming"] and m["versus"]["memorised"]
    assert len(m["uniform_finite"]) == s["steps_to_nan_uniform"] == 2


def test_the_numbers_the_scaling_and_phase_readmes_state():
    m, doc, mf = numbers_of("02-why-sqrt-n")
    assert list(m["max_abs_z"].values()) == [mf["results_summary"][f"max_abs_z_scale_{k}"]
                                            for k in ("1", "1_over_n", "1_over_sqrt_n")]
    assert (m["beyond_3se"], m["points"], m["lab_n"]) == (0, 36, 512)
    m, doc, mf = numbers_of("20-trainability")
    assert len(m["disagreeing"]) == mf["results_summary"]["disagreeing_cells"] == 8
    assert [(x["sigma_w2"], x["depth"]) for x in m["far"]] == [(1.0, 40)]  # 84 % past 6 ξ_c, two grid steps
    assert (len(m["past"]), len(m["short"])) == (7, 1)
