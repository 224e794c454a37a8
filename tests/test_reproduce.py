"""`initstudy reproduce`: the committed lab folders re-run bit for bit here; a changed number is found
and named; a bad manifest is one line."""
import json
import shutil
import subprocess
import sys

import pytest

from conftest import REPO, assert_refused, initstudy
from initstudy import reproduce

WALK = REPO / "projects" / "10-variance-walk"
ABLATE = REPO / "projects" / "10-init-matters"


@pytest.mark.parametrize("folder,script", [(WALK, "walk.py"), (ABLATE, "train.py")])
def test_committed_references_reproduce_bit_for_bit(folder, script):
    """The lab defaults (ablate: 1000 steps x 3 inits) re-run through the folder's own script."""
    proc = subprocess.run([sys.executable, script], cwd=folder, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith("reproduced bit for bit: 12 series"), proc.stdout


@pytest.fixture
def walk_copy(tmp_path):
    return shutil.copytree(WALK, tmp_path / "10-variance-walk")


def tamper(folder, init, layer, factor):
    doc = json.loads((folder / "results.json").read_text())
    doc["inits"][init]["layers"][layer]["var_empirical"] *= factor
    (folder / "results.json").write_text(json.dumps(doc, indent=1))


def test_one_changed_number_fails_naming_its_series(walk_copy):
    tamper(walk_copy, "uniform", 20, 1 + 1e-9)
    proc = initstudy("reproduce", walk_copy / "manifest.json")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("NOT reproduced: 1 of")
    assert any(l.strip().startswith("uniform/var: max abs diff") and "max rel diff 1e-09" in l for l in lines), lines
    assert "recorded environment vs this machine: identical" in proc.stdout


def run(capsys, *args):
    """reproduce in this process (same code path as the command, minus the interpreter start)."""
    code = reproduce.cli([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_tolerance_accepts_small_differences_and_says_so(walk_copy, capsys):
    tamper(walk_copy, "xavier", 3, 1 + 1e-9)
    code, out, _ = run(capsys, walk_copy / "manifest.json", "--tolerance", "1e-6")
    assert code == 0 and "within relative tolerance 1e-06, not bit for bit" in out and "xavier/var" in out, out
    code, out, _ = run(capsys, walk_copy / "manifest.json", "--tolerance", "1e-12")
    assert code == 1 and "beyond relative tolerance" in out, out


def test_environment_differences_are_listed(walk_copy, capsys):
    mf = json.loads((walk_copy / "manifest.json").read_text())
    mf["versions"]["numpy"], mf["hardware"]["cpu_model"] = "1.0.0", "Some Other CPU"
    (walk_copy / "manifest.json").write_text(json.dumps(mf))
    code, out, _ = run(capsys, walk_copy / "manifest.json", "--tolerance", "0")
    assert code == 0 and "reproduced bit for bit" in out, out
    assert "versions.numpy: recorded '1.0.0'" in out and "hardware.cpu_model: recorded 'Some Other CPU'" in out


@pytest.mark.parametrize("edit,words", [
    (lambda mf: "{not json", ["not valid JSON"]),
    (lambda mf: json.dumps({k: v for k, v in mf.items() if k not in ("seeds", "hardware")}), ["missing keys", "seeds"]),
    (lambda mf: json.dumps({**mf, "seeds": {**mf["seeds"], "weights/xavier": 1}}), ["weights/xavier", "do not match"]),
    (lambda mf: json.dumps({**mf, "config": {**mf["config"], "depth": 0}}), ["depth", "> 0"]),
    (lambda mf: json.dumps({**mf, "experiment": "99-other"}), ["experiment", "10-variance-walk"]),
])
def test_bad_manifest_is_one_line(walk_copy, capsys, edit, words):
    mf = json.loads((walk_copy / "manifest.json").read_text())
    (walk_copy / "manifest.json").write_text(edit(mf))
    code, out, err = run(capsys, walk_copy / "manifest.json")
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1, err
    assert err.startswith("initstudy reproduce: error: ") and all(w in err for w in words), err


def test_missing_results_file_and_bad_tolerance(walk_copy):
    proc = initstudy("reproduce", walk_copy / "manifest.json", "--tolerance", "-1")
    assert_refused(proc, "tolerance", ">= 0")
    assert proc.returncode == 2
    (walk_copy / "results.json").unlink()
    proc = subprocess.run([sys.executable, "walk.py"], cwd=walk_copy, capture_output=True, text=True, timeout=120)
    assert_refused(proc, "results.json")
    assert proc.returncode == 2 and proc.stderr.startswith("walk.py: error: "), proc.stderr
