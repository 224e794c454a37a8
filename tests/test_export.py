"""Runs -> lab folders, for real: `mlflow run` walk and ablate into a SQLite store, export, re-export,
reproduce, tamper; and every refusal, each on a real store, leaving nothing written."""
import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import REPO, Store, assert_refused, initstudy, mlflow_run
from initstudy.publish import export
from initstudy.core import inits
from initstudy.record import manifest
from initstudy.studies.ablate.compute import AblateConfig
from initstudy.studies.walk.compute import WalkConfig

EXPORT = [sys.executable, str(REPO / "scripts" / "export_run.py")]
FILES = {"10-variance-walk": {"walk.py", "results.json", "variance.png", "manifest.json", "README.md"},
         "10-init-matters": {"train.py", "losses.json", "loss_curves.png", "manifest.json", "README.md"}}
STEPS = 60


def export_run(*args, env, cwd):
    return subprocess.run([*EXPORT, *map(str, args)], env=env, cwd=cwd, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A store with one default walk and one short ablate (parent + child per init), exported once."""
    root = tmp_path_factory.mktemp("lab")
    store = Store(root)
    with ThreadPoolExecutor(2) as pool:  # two at a time on the store created above
        procs = [pool.submit(mlflow_run, store, "walk"), pool.submit(mlflow_run, store, "ablate", steps=STEPS),
                 # the README's ReLU check: a ReLU walk of the same shape and seed, through the command MLproject runs
                 pool.submit(initstudy, "walk", "--activation", "relu", env=store.env())]
    for proc in (p.result() for p in procs):
        assert proc.returncode == 0, proc.stderr[-3000:]
    work = root / "work"
    work.mkdir()
    proc = export_run(env=store.env(), cwd=work)
    assert proc.returncode == 0, proc.stderr
    return store, work / "projects"


def lab_parent(store, experiment, activation=None):
    """The lab's parent run: the exported (lab-default) one, or the walk of `activation` (the ReLU companion)."""
    want = activation or ("linear" if experiment == "10-variance-walk" else "relu")
    (run,) = [r for r in store.runs(f"tags.`initstudy.experiment` = '{experiment}' and tags.`initstudy.role` = 'parent'")
              if r.data.params["activation"] == want]
    return run


def child_metrics(store, experiment):
    out = {}
    for r in store.runs(f"tags.`mlflow.parentRunId` = '{lab_parent(store, experiment).info.run_id}'"):
        out[r.data.tags["initstudy.init"]] = r.data.metrics
    return out


def test_five_files_per_folder_and_manifest(lab):
    store, projects = lab
    assert {p.name for p in projects.iterdir()} == set(FILES)
    for experiment, files in FILES.items():
        folder = projects / experiment
        assert {p.name for p in folder.iterdir()} == files
        mf = manifest.read(folder / "manifest.json")
        assert set(manifest.REQUIRED) <= set(mf) and mf["experiment"] == experiment
        assert mf["config"]["inits"] == list(inits.LAB_INITS) and mf["config"]["hidden_dim"] == 256
        parent = lab_parent(store, experiment)
        assert mf["mlflow"]["parent_run_id"] == parent.info.run_id
        children = store.runs(f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
        assert mf["mlflow"]["run_ids"] == {r.data.tags["initstudy.init"]: r.info.run_id for r in children}
        assert (folder / next(f for f in files if f.endswith(".png"))).read_bytes()[:4] == b"\x89PNG"
    ablate_mf = manifest.read(projects / "10-init-matters" / "manifest.json")
    assert {"steps_to_nan_uniform", "final_loss_xavier", "final_loss_kaiming"} <= set(ablate_mf["results_summary"])
    assert ablate_mf["config"]["steps"] == STEPS and ablate_mf["config"]["batch_size"] == 64
    assert {f"weights/{i}" for i in inits.LAB_INITS} | {"data_seed", "data", "batches"} == set(ablate_mf["seeds"])


def test_readme_numbers_are_the_runs_metrics(lab):
    store, projects = lab
    walk_readme = (projects / "10-variance-walk" / "README.md").read_text()
    for init, m in child_metrics(store, "10-variance-walk").items():
        assert f"`{init}_final_layer_variance`: {m['final_layer_variance']!r}" in walk_readme  # one key on every child
    assert "does not: it multiplies the variance by" in walk_readme  # the lab's Kaiming claim, corrected
    ablate_readme = (projects / "10-init-matters" / "README.md").read_text()
    metrics = child_metrics(store, "10-init-matters")
    for init in ("xavier", "kaiming"):
        assert f"`final_loss_{init}`: {metrics[init]['final_loss']!r}" in ablate_readme
        assert f"| {metrics[init]['loss_slope_last200']!r} |" in ablate_readme
    nan_step = metrics["uniform"]["steps_to_nan"]
    assert "`final_loss_uniform`: null" in ablate_readme and "final_loss" not in metrics["uniform"]
    assert f"`steps_to_nan_uniform`: {int(nan_step)}" in ablate_readme
    assert f"not finite first at step {int(nan_step)}" in ablate_readme


def test_walk_readme_quotes_the_relu_walk(lab):
    """export.companion finds the ReLU walk (the walk Lab's companion); the walk README quotes its run and its per-layer factors
    (var_20 / var_1)^(1/19), computed here from the run's own results.json."""
    store, projects = lab
    relu = lab_parent(store, "10-variance-walk", "relu")
    doc = json.loads(store.download(relu.info.run_id, "results.json").read_text())
    text = (projects / "10-variance-walk" / "README.md").read_text()
    labels = {i: inits.INITS[i].label for i in inits.LAB_INITS}
    var = {i: [l["var_empirical"] for l in doc["inits"][i]["layers"]] for i in inits.LAB_INITS}
    quoted = ", ".join(f"{labels[i]} ×{(var[i][20] / var[i][1]) ** (1 / 19):.4g} per layer (final {var[i][20]:.4g})"
                       for i in inits.LAB_INITS)
    assert f"Measured with ReLU (walk run `{relu.info.run_id}`, same shape and seed): {quoted};" in text
    assert 0.9 < (var["kaiming"][20] / var["kaiming"][1]) ** (1 / 19) < 1.1  # Kaiming holds under ReLU


def test_export_matches_the_run_artifacts_and_is_byte_identical(lab, tmp_path, monkeypatch):
    store, projects = lab
    monkeypatch.chdir(tmp_path)
    assert export.run_cli(["--out", str(tmp_path / "again"), "--tracking-uri", store.uri]) == 0
    for experiment, files in FILES.items():
        for name in files:
            assert (tmp_path / "again" / experiment / name).read_bytes() == (projects / experiment / name).read_bytes()
    parent = lab_parent(store, "10-variance-walk")
    for name in ("results.json", "variance.png"):  # the plot re-drawn from results.json
        assert store.download(parent.info.run_id, name).read_bytes() == (projects / "10-variance-walk" / name).read_bytes()
    # the manifest is the run's, but for the store: a local path (sqlite:////tmp/...) is left out, the run ids stay
    recorded = json.loads(store.download(parent.info.run_id, "manifest.json").read_text())
    exported = (projects / "10-variance-walk" / "manifest.json").read_text()
    assert recorded["mlflow"]["tracking_uri"] == store.uri and store.uri not in exported and "sqlite:" not in exported
    assert json.loads(exported) == export.public_store(recorded) and "tracking_uri" not in json.loads(exported)["mlflow"]
    for experiment in FILES:
        assert "sqlite:" not in (projects / experiment / "README.md").read_text()


def test_reproduce_passes_then_tamper_fails_naming_the_series(lab, tmp_path):
    store, projects = lab
    proc = subprocess.run([sys.executable, "train.py"], cwd=projects / "10-init-matters", capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0 and "reproduced bit for bit" in proc.stdout, proc.stdout + proc.stderr
    folder = shutil.copytree(projects / "10-variance-walk", tmp_path / "walk")
    proc = initstudy("reproduce", folder / "manifest.json")
    assert proc.returncode == 0 and "reproduced bit for bit" in proc.stdout, proc.stdout + proc.stderr
    doc = json.loads((folder / "results.json").read_text())
    doc["inits"]["kaiming"]["layers"][5]["var_empirical"] *= 1 + 1e-12
    (folder / "results.json").write_text(json.dumps(doc))
    proc = subprocess.run([sys.executable, "walk.py"], cwd=folder, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "NOT reproduced" in proc.stdout and "kaiming/var: max abs diff" in proc.stdout
    assert "xavier/var:" not in proc.stdout


# --- refusals: small in-process runs on a fresh store, export through export.run_cli


@pytest.fixture(scope="module")
def small_store(tmp_path_factory):
    return Store(tmp_path_factory.mktemp("small"))


@pytest.fixture
def small(small_store, tmp_path, monkeypatch):
    """Record tiny walk / ablate single runs into one shared store (tests name their runs by id);
    cwd is an empty working tree."""
    from initstudy.studies.ablate import job as ablate_job
    from initstudy.studies.walk import job as walk_job

    store = small_store
    monkeypatch.setenv("MLFLOW_EXPERIMENT_ID", store.experiment_id)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store.uri)
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)

    def walk(init, **kw):
        return walk_job.run(WalkConfig(**{"depth": 3, "width": 8, "batch": 4, **kw}), init, store.uri)["run_ids"]["top"]

    def ablate(init, **kw):
        cfg = AblateConfig(**{"depth": 2, "width": 8, "input_dim": 8, "batch": 8, "steps": 5, "n_train": 32,
                              "n_val": 8, **kw})
        return ablate_job.run(cfg, init, store.uri)["run_ids"]["top"]

    return walk, ablate, work


@pytest.fixture(scope="module")
def walk_singles(small_store):
    """One tiny walk set of single runs (--run-id arguments), shared by tests that do not change it."""
    return []


def ids_of(small, walk_singles):
    if not walk_singles:
        walk_singles += [small[0](i, seed=7) for i in inits.LAB_INITS]
    return [a for i in walk_singles for a in ("--run-id", i)]


def refused(capsys, argv, *words):
    code = export.run_cli([str(a) for a in argv])
    err = capsys.readouterr().err
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and err.startswith("export_run: error: "), err
    for w in words:
        assert w in err, (w, err)


def test_singles_export_and_unknown_or_unfinished_runs(small, small_store, capsys):
    walk, _, work = small
    ids = [walk(i) for i in inits.LAB_INITS]
    refused(capsys, ["--run-id", "0123456789abcdef0123456789abcdef"], "unknown run id 0123456789abcdef")
    small_store.client.set_terminated(ids[1], status="FAILED")
    refused(capsys, [a for i in ids for a in ("--run-id", i)], ids[1], "FAILED, not FINISHED", "--allow-unfinished")
    assert not (work / "projects").exists()
    assert export.run_cli([a for i in ids for a in ("--run-id", i)] + ["--allow-unfinished"]) == 0
    mf = manifest.read(work / "projects" / "10-variance-walk" / "manifest.json")
    assert mf["mlflow"]["run_ids"] == dict(zip(inits.LAB_INITS, ids)) and mf["mlflow"]["parent_run_id"] is None
    assert set(mf["seeds"]) == {"input", "pairs", "top_grad", "probes"} | {f"weights/{i}" for i in inits.LAB_INITS}


def test_set_with_different_config_or_data_seed_or_missing_init(small, capsys):
    walk, ablate, work = small
    w = [walk("uniform"), walk("xavier"), walk("kaiming", depth=4)]
    refused(capsys, [a for i in w for a in ("--run-id", i)], "differ in config", "depth (3 in uniform, 4 in kaiming)")
    refused(capsys, ["--run-id", w[0], "--run-id", w[1]], "no run for init kaiming")
    a = [ablate("uniform"), ablate("xavier"), ablate("kaiming", data_seed=7)]
    refused(capsys, [a_ for i in a for a_ in ("--run-id", i)], "differ in config", "data_seed (42 in uniform, 7 in")
    assert not (work / "projects").exists()


def test_singles_with_biases_export_and_reproduce(small, capsys):
    """Single walk runs with sigma_b2 > 0 each carry their own bias seed: they still form one set, the
    folder's manifest lists every init's, and it reproduces (signal block included) bit for bit."""
    walk, _, work = small
    ids = [walk(i, sigma_b2=0.1, gain=1.2, activation="tanh") for i in inits.LAB_INITS]
    assert export.run_cli([a for i in ids for a in ("--run-id", i)]) == 0
    folder = work / "projects" / "10-variance-walk"
    mf = manifest.read(folder / "manifest.json")
    assert {f"biases/{i}" for i in inits.LAB_INITS} <= set(mf["seeds"]) and mf["config"]["sigma_b2"] == 0.1
    capsys.readouterr()
    from initstudy.publish import reproduce

    assert reproduce.cli([str(folder / "manifest.json")]) == 0
    assert capsys.readouterr().out.startswith("reproduced bit for bit: 30 series")  # 10 per init, the mean included
    # a walk recorded before the `mean` series: the other 27 compared, bit for bit, and said so
    doc = json.loads((folder / "results.json").read_text())
    for block in doc["signal"]["inits"].values():
        for layer in block["layers"]:
            del layer["mean"]
    (folder / "results.json").write_text(json.dumps(doc))
    assert reproduce.cli([str(folder / "manifest.json")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("reproduced bit for bit: 27 series") and "recorded before the walk's mean series" in out, out


def test_existing_folder_needs_force_and_force_replaces_atomically(small, walk_singles, capsys):
    walk, _, work = small
    ids = ids_of(small, walk_singles)
    assert export.run_cli(ids) == 0
    folder = work / "projects" / "10-variance-walk"
    (folder / "note.txt").write_text("mine")
    refused(capsys, ids, "exists", "--force")
    assert (folder / "note.txt").read_text() == "mine"
    assert export.run_cli(ids + ["--force"]) == 0
    assert not (folder / "note.txt").exists() and (folder / "walk.py").exists()
    assert [p.name for p in folder.parent.iterdir()] == ["10-variance-walk"]  # no temp folders left


def test_interrupted_write_leaves_the_old_folder(tmp_path):
    target = tmp_path / "projects" / "10-variance-walk"
    export.write_atomic(target, {"a.txt": b"old"})

    with pytest.raises(TypeError):
        export.write_atomic(target, {"a.txt": b"new", "b.txt": object()})
    assert (target / "a.txt").read_bytes() == b"old" and [p.name for p in target.parent.iterdir()] == [target.name]


def test_out_outside_projects_is_refused_unless_absolute(small, walk_singles, capsys, tmp_path):
    walk, _, work = small
    ids = ids_of(small, walk_singles)
    for out in ("../elsewhere", "projects/../..", "lab"):
        refused(capsys, ids + ["--out", out], "outside", "absolute path")
    assert sorted(p.name for p in work.iterdir()) == [] and not (tmp_path / "elsewhere").exists()
    assert export.run_cli(ids + ["--out", "projects/mine"]) == 0 and (work / "projects/mine/10-variance-walk").is_dir()
    assert export.run_cli(ids + ["--out", str(tmp_path / "abs")]) == 0 and (tmp_path / "abs/10-variance-walk").is_dir()


@pytest.mark.parametrize("text,words", [("{not json", ["manifest.json", "not valid JSON"]),
                                        ('{"experiment": "10-variance-walk"}', ["missing keys", "seed"])])
def test_bad_manifest_artifact_is_refused(small, small_store, capsys, text, words):
    walk, _, work = small
    ids = [walk(i) for i in inits.LAB_INITS]
    (small_store.root / "artifacts" / ids[2] / "artifacts" / "manifest.json").write_text(text)
    refused(capsys, [a for i in ids for a in ("--run-id", i)], ids[2], *words)
    assert not (work / "projects").exists()


def test_missing_store_is_refused_and_not_created(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    absent = tmp_path / "nope.db"
    proc = export_run("--tracking-uri", f"sqlite:///{absent}", env=env, cwd=tmp_path)
    assert_refused(proc, "does not exist", str(absent))
    assert proc.returncode == 2 and proc.stderr.startswith("export_run: error: ")
    proc = export_run(env=env, cwd=tmp_path)  # the default: ./mlflow.db
    assert_refused(proc, "sqlite:///mlflow.db", "does not exist")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_out_that_cannot_be_written_is_one_line(store, tmp_path):
    """--out at a file, under a file, or at an immutable folder (chattr +i; a read-only filesystem takes
    the same check, os.access): one line, exit 2, checked before any run is read, nothing written."""
    blocker = tmp_path / "file"
    blocker.write_text("x")
    frozen = tmp_path / "frozen"
    frozen.mkdir()
    cases = [(blocker, "is a file"), (blocker / "sub", "is a file")]
    before = sorted(p.name for p in tmp_path.iterdir())
    if subprocess.run(["chattr", "+i", str(frozen)], capture_output=True).returncode == 0:
        cases.append((frozen, "cannot write in"))
    try:
        for out, words in cases:
            proc = export_run("--run-id", "0" * 32, "--out", out, env=store.env(), cwd=tmp_path)
            assert_refused(proc, f"--out {out}", words)
            assert proc.returncode == 2
    finally:
        subprocess.run(["chattr", "-i", str(frozen)], capture_output=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == before and list(frozen.iterdir()) == []
