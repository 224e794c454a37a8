"""`pip install .` without -e works: a wheel of the checkout, installed into a fresh venv, runs
`mlflow run . -e walk --env-manager local`.

The editable install hid a broken wheel once (`packages = ["initstudy"]` shipped no subpackage): here the
wheel is built from a copy of the checkout, installed into a venv that sees the system's dependencies
(--system-site-packages, nothing downloaded) but whose initstudy is the wheel's, and `mlflow run` runs from
a folder holding only MLproject and conda.yaml, so no checkout is on the path (`python -m` puts the cwd first).
"""
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import REPO, Store

SHIPPED = ("*.py", "*.j2")  # what the package needs at run time: its code and its README templates


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(venv's python, its env, the project folder, the wheel's file names)."""
    root = tmp_path_factory.mktemp("packaging")
    src = root / "src"  # a copy: building in the checkout would leave build/ and *.egg-info in it
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    shutil.copytree(REPO / "initstudy", src / "initstudy", ignore=shutil.ignore_patterns("__pycache__"))
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(root / "dist"),
                            str(src)], capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stdout + build.stderr
    (wheel,) = (root / "dist").glob("initstudy-*.whl")
    # no pip of its own (it would be copied in, seconds): the system's pip, run by the venv's python, installs there
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(root / "venv")],
                   check=True, timeout=120)
    python = root / "venv" / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("MLFLOW_")}
    env.update(PATH=f"{python.parent}{os.pathsep}{env['PATH']}", VIRTUAL_ENV=str(root / "venv"))
    inst = subprocess.run([str(python), "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel)],
                          env=env, capture_output=True, text=True, timeout=300)
    assert inst.returncode == 0, inst.stdout + inst.stderr
    project = root / "project"
    project.mkdir()
    for name in ("MLproject", "conda.yaml"):
        shutil.copy(REPO / name, project / name)
    return python, env, project, zipfile.ZipFile(wheel).namelist()


def test_wheel_ships_every_module_and_template(installed):
    names = set(installed[3])
    wanted = sorted(str(p.relative_to(REPO)) for pattern in SHIPPED for p in (REPO / "initstudy").rglob(pattern)
                    if "__pycache__" not in p.parts)
    assert [w for w in wanted if w not in names] == []
    assert "initstudy/run/cli.py" in names and "initstudy/studies/walk/job.py" in names


def test_venv_imports_the_wheel_not_the_checkout(installed):
    """Every initstudy module the CLI loads comes from the venv. initstudy.__file__ alone is not enough: the
    system's editable finder (a .pth the venv reads) serves any submodule the wheel lacks from its checkout."""
    python, env, project, _ = installed
    code = ("import sys; from initstudy.run import cli; cli.build_parser(['walk']); "  # what `initstudy walk` loads
            "print('\\n'.join(m.__file__ for k, m in sys.modules.items() if k.split('.')[0] == 'initstudy'))")
    where = subprocess.run(["python", "-c", code], env=env, cwd=project, capture_output=True, text=True, timeout=120)
    assert where.returncode == 0, where.stderr
    files = where.stdout.split()
    assert {"core/nn.py", "record/tracking.py", "studies/walk/job.py"} <= {f.split("/initstudy/")[-1] for f in files}
    assert [f for f in files if not Path(f).is_relative_to(python.parent.parent)] == []


def test_mlflow_run_walk_from_the_wheel(installed, tmp_path):
    python, env, project, _ = installed
    store = Store(tmp_path)
    env = {**env, "MLFLOW_TRACKING_URI": store.uri, "MLFLOW_EXPERIMENT_ID": store.experiment_id}
    cmd = [str(python), "-m", "mlflow", "run", ".", "-e", "walk", "--env-manager", "local"]
    for k, v in dict(init="xavier", depth=3, width=16, batch=8).items():
        cmd += ["-P", f"{k}={v}"]
    proc = subprocess.run(cmd, env=env, cwd=project, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = store.runs()  # one init: one run, no parent
    assert run.info.status == "FINISHED" and run.data.tags["initstudy.role"] == "single"
    assert run.data.params["depth"] == "3" and run.data.tags["initstudy.init"] == "xavier"
    assert "final_layer_variance" in run.data.metrics
    # the code that ran sits in the venv, outside any git checkout: the checkout's would record its commit
    assert run.data.params["git.commit"] == "unknown"
