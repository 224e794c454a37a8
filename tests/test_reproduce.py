"""`initstudy reproduce`: the committed lab folders re-run bit for bit here; a changed number is found
and named; a bad manifest is one line."""
import json
import os
import platform
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO, assert_refused, initstudy
from initstudy.record import provenance
from initstudy.publish import reproduce

WALK = REPO / "projects" / "10-variance-walk"
ABLATE = REPO / "projects" / "10-init-matters"
SCALING = REPO / "projects" / "02-why-sqrt-n"


@pytest.mark.parametrize("folder,script,what", [(WALK, "walk.py", "12 series"), (ABLATE, "train.py", "12 series"),
                                               (SCALING, "why_sqrt_n.py", "79 series")])
def test_committed_references_reproduce_bit_for_bit(folder, script, what):
    """The lab defaults (ablate: 1000 steps x 3 inits; lab 02's whole study) re-run through the folder's own script."""
    proc = subprocess.run([sys.executable, script], cwd=folder, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith(f"reproduced bit for bit: {what}"), proc.stdout


@pytest.fixture
def walk_copy(tmp_path):
    """The walk reference as if recorded on this machine: its versions and hardware are this one's
    (the BLAS block stays as recorded: reproduce pins the recorded kernel)."""
    folder = shutil.copytree(WALK, tmp_path / "10-variance-walk")
    mf = json.loads((folder / "manifest.json").read_text())
    mf.update(versions=provenance.versions(), hardware=provenance.hardware())
    (folder / "manifest.json").write_text(json.dumps(mf, indent=2))
    return folder


def other_kernel() -> str:
    """An OpenBLAS kernel this CPU runs (SSE4.2 is every x86-64 CPU since 2008) that it does not pick."""
    here = provenance.blas()
    if here["library"] != "openblas" or platform.machine() != "x86_64":
        pytest.skip(f"needs OpenBLAS on x86-64 (here: {here['library']} on {platform.machine()})")
    return "Nehalem" if here["architecture"] != "Nehalem" else "Haswell"


def test_a_run_recorded_under_another_blas_kernel_reproduces_bit_for_bit(tmp_path):
    """A lab folder whose run used another OpenBLAS kernel (made here under OPENBLAS_CORETYPE): the
    same config under this machine's own kernel gives other float32 bits, and reproduce, which
    pins the recorded kernel, gives the recorded ones."""
    kernel, folder = other_kernel(), shutil.copytree(ABLATE, tmp_path / "10-init-matters")
    mf = json.loads((folder / "manifest.json").read_text())
    mf["config"].update(steps=40, inits=["xavier", "kaiming"])
    (folder / "manifest.json").write_text(json.dumps(mf, indent=2))
    make = subprocess.run(  # the run's results and BLAS block, computed under the other kernel
        [sys.executable, "-c", RECORD_UNDER_KERNEL, str(folder / "manifest.json")], capture_output=True, text=True,
        timeout=300, env={**os.environ, provenance.KERNEL_ENV: kernel})
    assert make.returncode == 0, make.stderr[-2000:]
    assert json.loads((folder / "manifest.json").read_text())["blas"]["architecture"] == kernel
    _, config, recorded = reproduce.load(folder / "manifest.json")
    here, _ = reproduce.rerun(config, ["xavier", "kaiming"])  # this machine's own kernel: other bits
    recorded, here = reproduce.series_of(recorded), reproduce.series_of(here)
    assert recorded.keys() == here.keys() and len(recorded) == 8  # loss, val_step, val_loss, val_acc per init
    assert not all(np.array_equal(recorded[k], here[k], equal_nan=True) for k in recorded)
    proc = subprocess.run([sys.executable, "train.py"], cwd=folder, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith("reproduced bit for bit: 8 series"), proc.stdout
    assert f"BLAS kernel: the recorded {kernel}, pinned with {provenance.KERNEL_ENV}" in proc.stdout


def test_a_made_up_kernel_is_not_claimed_pinned(tmp_path):
    """blas.architecture tampered to a name OpenBLAS does not know: OPENBLAS_CORETYPE is ignored, so the
    kernel in use (threadpoolctl) is checked, and reproduce says it compared under this machine's own
    (before: 'pinned with OPENBLAS_CORETYPE')."""
    other_kernel()  # OpenBLAS on x86-64, else skipped
    folder = shutil.copytree(ABLATE, tmp_path / "10-init-matters")
    mf = json.loads((folder / "manifest.json").read_text())
    mf["config"].update(steps=20, inits=["kaiming"])
    mf["blas"]["architecture"] = "Bogus9000"
    (folder / "manifest.json").write_text(json.dumps(mf, indent=2))
    proc = initstudy("reproduce", folder / "manifest.json")
    here = provenance.blas()["architecture"]
    assert "pinned with" not in proc.stdout and "Traceback" not in proc.stderr, proc.stdout + proc.stderr
    assert (f"BLAS kernel: the recorded Bogus9000 cannot be pinned here ({provenance.KERNEL_ENV}=Bogus9000 left "
            f"OpenBLAS on {here}); compared under this machine's {here}") in proc.stdout, proc.stdout


RECORD_UNDER_KERNEL = """
import json, sys
from pathlib import Path
from initstudy.record import provenance, results
from initstudy.publish import reproduce
path = Path(sys.argv[1])
mf, config, _ = reproduce.load(path)
doc, summary = reproduce.rerun(config, mf["config"]["inits"])
path.with_name("losses.json").write_text(results.dumps(doc))
mf.update(results_summary=summary, blas=provenance.blas())
path.write_text(json.dumps(mf, indent=2))
"""


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


UNDER_SKYLAKEX = """
import json, sys
import numpy as np
from initstudy.record import provenance
from initstudy.publish import reproduce
kernel = provenance.blas()["architecture"]
_, config, recorded = reproduce.load(sys.argv[1])
now, _ = reproduce.rerun(config, list(recorded["inits"]))
a, b = reproduce.series_of(recorded), reproduce.series_of(now)
print(json.dumps({"kernel": kernel, "series": len(a),
                  "differ": sorted(k for k in a if not np.array_equal(a[k], b[k], equal_nan=True))}))
"""


def test_the_ablate_reference_differs_in_8_of_its_12_series_under_skylakex():
    """README: the float32 ablate reference, recorded under Haswell, differs in 8 of its 12 series under
    SkylakeX (every loss and val_loss, Xavier's and Kaiming's val_acc; not the val steps, nor the
    diverged uniform's val_acc): re-run in a process of its own with OPENBLAS_CORETYPE=SkylakeX, where
    this CPU runs that kernel (AVX-512); skipped with the reason elsewhere. ~15-40 s."""
    here = provenance.blas()
    if here["library"] != "openblas" or platform.machine() != "x86_64":
        pytest.skip(f"needs OpenBLAS on x86-64 to run both kernels (here: {here['library']} on {platform.machine()})")
    assert json.loads((ABLATE / "manifest.json").read_text())["blas"]["architecture"] == "Haswell"
    proc = subprocess.run([sys.executable, "-c", UNDER_SKYLAKEX, str(ABLATE / "manifest.json")], capture_output=True,
                          text=True, timeout=600, env={**os.environ, provenance.KERNEL_ENV: "SkylakeX"})
    if proc.returncode < 0:
        pytest.skip(f"this CPU cannot run OpenBLAS's SkylakeX kernel (AVX-512): the child died of signal {-proc.returncode}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.splitlines()[-1])
    if out["kernel"] != "SkylakeX":
        pytest.skip(f"OpenBLAS chose {out['kernel']}, not SkylakeX, under {provenance.KERNEL_ENV}=SkylakeX on this CPU")
    assert out["series"] == 12
    assert len(out["differ"]) == 8, out["differ"]
    assert not any(k.endswith("val_step") for k in out["differ"]) and "uniform/val_acc" not in out["differ"]
