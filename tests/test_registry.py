"""A study is its folder and one registry entry: a toy study written here (registered at import, so a
sweep's Dask worker that unpickles its config registers it too) is picked up by the CLI, the sweep,
export and reproduce, through a real SQLite store and real files. No initstudy file names it."""
import json
import sys
from dataclasses import dataclass

import numpy as np
import pytest

from initstudy import studies
from initstudy.core.config import positive, to_dict
from initstudy.record import manifest, provenance, results

EXPERIMENT = "99-toy"


@dataclass(frozen=True)
class ToyConfig:  # a sweep's default axes are init, depth and seed: the toy has them
    depth: int = 3
    width: int = 8
    seed: int = 0

    def validate(self):
        positive("depth", self.depth), positive("width", self.width)


@dataclass
class ToyResult:
    init: str
    var: np.ndarray  # per layer: Var of a random walk through `depth` Gaussian layers


def compute(config, init="xavier"):
    rng = np.random.default_rng([config.seed, config.depth])
    x = rng.standard_normal(config.width)
    var = [float(np.var(x := x @ rng.standard_normal((config.width, config.width)) / np.sqrt(config.width)))
           for _ in range(config.depth)]
    return ToyResult(init, np.array(var))


def document(config, r) -> dict:
    return {"experiment": EXPERIMENT, "config": to_dict(config), "walk": {"var": results.jsonable(r.var)},
            "summary": {"final_var": results.jsonable(r.var[-1:])[0]}}


# the job (the CLI's command, a sweep child's record), its record (ASKS, note) and readme, all this module
HELP, ASKS, TEMPLATE = "the toy study", "**The toy.** A random walk's variance.", "# Toy\n\nfinal {{ v|g }}\n"


def add_arguments(parser):
    from initstudy.run.runs import add_common_arguments

    add_common_arguments(parser, ToyConfig)


def child_record(config, r, prov, date, mlflow_ids) -> tuple:
    from initstudy.run.runs import common_params, write_text

    doc = document(config, r)
    mf = manifest.build(experiment=EXPERIMENT, date=date, seed=config.seed, provenance=prov, config=to_dict(config),
                        inits=[], seeds={}, results_summary=doc["summary"], mlflow=mlflow_ids)
    return (common_params(to_dict(config), prov), [("var", v, l) for l, v in enumerate(r.var)], {},
            {"toy.json": write_text(results.dumps(doc)), "manifest.json": write_text(manifest.dumps(mf))})


def main(args):
    from initstudy.record import tracking
    from initstudy.run.runs import config_from_args, mlflow_block, record, run_set, today

    config, tracker = config_from_args(ToyConfig, args), tracking.Tracker(args.tracking_uri)
    with provenance.pin_blas_threads(), run_set(tracker, EXPERIMENT, "toy", [args.init]) as ids:
        r = compute(config, args.init)
        params, metrics, tags, artifacts = child_record(config, r, provenance.collect(), today(), mlflow_block(tracker, ids))
        record(tracker, ids["top"], params, metrics, artifacts, {**tags, "mlflow.note.content": note([r])})


def note(group, child=False, artifacts=None) -> str:
    return "; ".join(f"{r.init}: variance {r.var[-1]:.3g} at layer {len(r.var)}" for r in group)


def numbers(doc, mf) -> dict:
    return {"v": doc["summary"]["final_var"]}


def draw(doc, path):
    path.write_bytes(json.dumps(doc["walk"]).encode())  # a figure is any file the Lab names


def rerun(config, names) -> tuple:
    doc = document(config, compute(config))
    return doc, doc["summary"]


HERE = sys.modules[__name__]
studies.register(studies.Study(
    "toy", EXPERIMENT, job=HERE, record=HERE, readme=HERE,
    sweep=studies.Sweep(ToyConfig, compute, lambda r: {"final_var": float(r.var[-1])}, (("final_var", "var", True),)),
    lab=studies.Lab("run", "toy.json", "walk", "toy.png", draw, "toy.py", "the toy study", config=ToyConfig,
                    seeds=lambda config, names, recorded: {}, rerun=rerun,
                    series=lambda doc: {"var": results.from_json(doc["walk"]["var"])})))


@pytest.fixture(scope="module")
def toy_store(tmp_path_factory):
    """A real SQLite store; the experiments the toy creates keep their artifacts under it too (cwd)."""
    import os

    from conftest import Store

    root, cwd = tmp_path_factory.mktemp("toy"), os.getcwd()
    os.chdir(root)
    yield Store(root)
    os.chdir(cwd)


@pytest.fixture(scope="module")
def toy_run(toy_store):
    """`initstudy toy --depth 4 --init xavier`, run by the real CLI in this process: (exit code, its run)."""
    from initstudy.run import cli

    code = cli.main(["toy", "--depth", "4", "--tracking-uri", toy_store.uri, "--init", "xavier"])
    (run,) = toy_store.client.search_runs([toy_store.client.get_experiment_by_name(EXPERIMENT).experiment_id])
    return code, run


def test_the_cli_runs_the_toy_into_its_own_experiment(toy_store, toy_run, capsys):
    from initstudy.run import cli

    code, run = toy_run
    exp = toy_store.client.get_experiment(run.info.experiment_id)
    assert code == 0 and exp.name == EXPERIMENT and run.data.tags["initstudy.experiment"] == EXPERIMENT
    assert exp.tags["mlflow.note.content"].startswith(ASKS)  # the experiment's description from the registry
    history = toy_store.client.get_metric_history(run.info.run_id, "var")
    assert [m.value for m in sorted(history, key=lambda m: m.step)] == compute(ToyConfig(depth=4)).var.tolist()
    assert cli.main(["toy", "--depth", "0", "--tracking-uri", toy_store.uri]) == 2
    assert "depth" in capsys.readouterr().err


def test_the_sweep_grids_the_toy_on_dask(toy_store):
    from initstudy.run import grid, sweep

    g = grid.build("toy", "init=xavier;depth=2,3", "width=4", seeds="0")
    opts = {"workers": 1, "scheduler": "", "tls": {k: "" for k in ("tls_ca_file", "tls_cert", "tls_key")}, "resume": ""}
    out = sweep.run(g, opts, toy_store.uri)
    rows = {r["depth"]: r for r in out["rows"]}
    assert {d: r["final_var"] for d, r in rows.items()} == {d: compute(ToyConfig(d, 4)).var[-1] for d in (2, 3)}
    child = toy_store.client.get_run(rows[3]["run_id"])
    assert child.data.tags["mlflow.note.content"] == note([compute(ToyConfig(3, 4))])
    exp = toy_store.client.get_experiment_by_name(studies.sweep_experiment(EXPERIMENT))
    assert exp is not None and child.info.experiment_id == exp.experiment_id


def test_export_writes_the_toy_folder_and_reproduce_checks_it(toy_store, toy_run, tmp_path, capsys):
    from initstudy.publish import export, reproduce

    run = toy_run[1]
    out = tmp_path / "projects"
    assert export.run_cli(["--run-id", run.info.run_id, "--out", str(out), "--tracking-uri", toy_store.uri]) == 0
    folder = out / EXPERIMENT
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "manifest.json", "toy.json", "toy.png", "toy.py"]
    doc = json.loads((folder / "toy.json").read_text())
    assert (folder / "README.md").read_text() == f"# Toy\n\nfinal {doc['summary']['final_var']:.4g}\n"
    assert json.loads((folder / "manifest.json").read_text())["schema_version"] == manifest.SCHEMA_VERSION
    capsys.readouterr()
    assert reproduce.run(folder / "manifest.json") == 0
    assert "reproduced bit for bit: 1 series and 1 values of the study (99-toy" in capsys.readouterr().out
    doc["walk"]["var"][1] *= 1 + 1e-12  # one number changed: the check fails and names the series
    (folder / "toy.json").write_text(results.dumps(doc))
    assert reproduce.run(folder / "manifest.json") == 1
    assert "NOT reproduced" in capsys.readouterr().out


def test_no_package_file_names_the_toy():
    """The toy is this file and its registration: no file of the package names it."""
    from conftest import REPO

    named = [p for p in (REPO / "initstudy").rglob("*") if p.is_file() and p.suffix in (".py", ".j2")
             and any(name in p.read_text() for name in (EXPERIMENT, '"toy"', "test_registry"))]
    assert named == [] and "toy" in studies.STUDIES


def test_every_committed_manifest_version_reads():
    """Every committed manifest reads, those from before schema_version (version 1) and those since (2);
    a newer one is refused in one line."""
    from conftest import REPO

    versions = {p.parent.name: manifest.read(p).get("schema_version", 1)
                for p in sorted((REPO / "projects").glob("*/manifest.json"))}
    assert set(versions.values()) <= {1, 2}
    assert versions["10-variance-walk"] == 1 and versions["02-why-sqrt-n"] == 1  # committed before the key
    mf = json.loads((REPO / "projects" / "10-variance-walk" / "manifest.json").read_text())
    assert manifest.validate({**mf, "schema_version": 2}) and manifest.validate({**mf, "schema_version": 1})
    with pytest.raises(manifest.ManifestError, match="schema_version must be an integer in 1..2"):
        manifest.validate({**mf, "schema_version": 3})
