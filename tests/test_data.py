"""The datasets by name (initstudy/core/data.py): each is its source's arrays exactly (mnist1d against the
package's own make_dataset, digits against scikit-learn's load_digits), the synthetic set as ever,
shapes and refusals; an ablate run on a real set is recorded and reproduces bit for bit."""
import json
import random
import shutil

import numpy as np
import pytest

from conftest import initstudy
from initstudy.studies.ablate import compute as ablate
from initstudy.core import data
from initstudy.publish import reproduce
from initstudy.studies.ablate.compute import AblateConfig
from initstudy.core.config import ConfigError, parse


@pytest.fixture(scope="module")
def package_mnist1d():
    """MNIST-1D as its package makes it, called here independently of initstudy."""
    from mnist1d.data import get_dataset_args, make_dataset

    return make_dataset(get_dataset_args())


def test_mnist1d_is_the_packages_arrays_exactly(package_mnist1d, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # get_dataset would leave ./mnist1d_data.pkl here; make_dataset writes nothing
    state = np.random.get_state()[1].copy(), random.getstate()
    ds = data.load("mnist1d", 42, AblateConfig(data="mnist1d").shape(), "float64")
    d = package_mnist1d
    for ours, theirs in ((ds.x_train, d["x"]), (ds.y_train, d["y"]), (ds.x_val, d["x_test"]), (ds.y_val, d["y_test"])):
        assert ours.dtype == theirs.dtype and np.array_equal(ours, theirs)
    assert ds.x_train.shape == (4000, 40) and ds.x_val.shape == (1000, 40)
    assert set(np.unique(ds.y_train)) == set(np.unique(ds.y_val)) == set(range(10))
    assert list(tmp_path.iterdir()) == []  # nothing downloaded, nothing cached
    # make_dataset seeds numpy's and Python's global random state: ours puts both back
    assert np.array_equal(np.random.get_state()[1], state[0]) and random.getstate() == state[1]
    f32 = ablate.dataset(AblateConfig(data="mnist1d"))  # ablate's default dtype: the same numbers, cast
    assert f32.x_train.dtype == np.float32 and np.array_equal(f32.x_train, d["x"].astype(np.float32))


def test_mnist1d_data_seed_is_the_generators_seed(package_mnist1d):
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.seed = 7
    other = make_dataset(args)
    ds = data.load("mnist1d", 7, AblateConfig(data="mnist1d").shape(), "float64")
    assert np.array_equal(ds.x_train, other["x"]) and np.array_equal(ds.y_val, other["y_test"])
    assert not np.array_equal(other["x"], package_mnist1d["x"])
    c = AblateConfig(data="mnist1d", data_seed=7)
    assert c.stream_seeds()["data"] == 7 and data.label("mnist1d", 7) == "mnist1d-7"


def test_digits_split_is_fixed_complete_and_load_digits_exactly():
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    a, b = (data.load("digits", s, AblateConfig(data="digits").shape(), "float64") for s in (0, 42))
    for name in ("x_train", "y_train", "x_val", "y_val"):  # no seed: the same split for every data_seed
        assert np.array_equal(getattr(a, name), getattr(b, name))
    assert len(a.y_train) == 1347 and len(a.y_val) == 450 and a.x_train.shape[1] == 64
    np.testing.assert_array_equal(np.concatenate([a.x_train, a.x_val]), x / 16)  # all 1797, in order, once
    np.testing.assert_array_equal(np.concatenate([a.y_train, a.y_val]), y)
    val, train = np.bincount(a.y_val), np.bincount(a.y_train)  # every class in both (docs/datasets.md)
    assert (val.min(), val.max(), train.min(), train.max()) == (41, 48, 133, 137)
    assert AblateConfig(data="digits").stream_seeds()["data"] is None and data.label("digits", 42) == "digits"


def test_synthetic_through_the_registry_is_lab_01s_set():
    ds = ablate.dataset(AblateConfig())
    ref = data.synthetic(42, 1000, 200, 256, 2, "float32")
    for name in ("x_train", "y_train", "x_val", "y_val"):
        assert getattr(ds, name).dtype == getattr(ref, name).dtype
        assert np.array_equal(getattr(ds, name), getattr(ref, name))
    assert AblateConfig().shape() == dict(n_train=1000, n_val=200, input_dim=256, classes=2)
    assert AblateConfig(input_dim=40, classes=10).shape()["input_dim"] == 40  # synthetic takes any shape


def test_shapes_follow_the_dataset_and_contradictions_are_refused():
    assert parse(AblateConfig, {"data": "mnist1d"}).shape() == dict(n_train=4000, n_val=1000, input_dim=40, classes=10)
    assert parse(AblateConfig, {"data": "digits", "input_dim": "64", "classes": "10"}).input_dim == 64  # stated: ok
    with pytest.raises(ConfigError, match=r"^input_dim=256 contradicts data=mnist1d, whose input_dim is 40"):
        parse(AblateConfig, {"data": "mnist1d", "input_dim": "256"})
    with pytest.raises(ConfigError, match=r"^classes=2 contradicts data=digits, whose classes is 10"):
        parse(AblateConfig, {"data": "digits", "classes": "2"})
    with pytest.raises(ConfigError, match=r"^data must be one of synthetic, mnist1d, digits; got 'mnist'$"):
        parse(AblateConfig, {"data": "mnist"})


def test_identity_names_the_generator_and_the_bits():
    c = AblateConfig(data="mnist1d")
    ds = ablate.dataset(c)
    block = data.identity(c.data, c.data_seed, c.shape(), ds)
    assert block["name"] == "mnist1d" and block["args"]["seed"] == 42 and "url" not in block["args"]
    assert block["args"]["num_samples"] == 5000 and block["version"] == "0.0.2.post1"
    assert block["sha256"] == data.sha256(ablate.dataset(c))  # rebuilt: the same bits
    changed = data.Dataset(ds.x_train.copy(), ds.y_train, ds.x_val, ds.y_val)
    changed.x_train[0, 0] = np.nextafter(changed.x_train[0, 0], np.float32(np.inf))
    assert data.sha256(changed) != block["sha256"]


@pytest.mark.parametrize("name", ["mnist1d", "digits"])
def test_ablate_on_a_real_set_is_recorded_and_reproduces(store, tmp_path, name):
    """The real command: the set logged as an MLflow dataset input, the manifest's data block, and
    `initstudy reproduce` on the run's files bit for bit; a manifest whose set differs is named."""
    proc = initstudy("ablate", "--data", name, "--init", "kaiming", "--depth", "3", "--width", "32", "--steps", "40",
                     "--lr", "0.05", "--batch", "100", env=store.env())
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = store.runs()
    (inp,) = run.inputs.dataset_inputs
    assert inp.dataset.name == data.label(name, 42) and inp.dataset.digest == run.data.params["dataset_digest"]
    p, config = run.data.params, AblateConfig(data=name)
    assert p["data"] == name and p["input_dim"] == p["data.input_dim"] == str(config.input_dim)
    assert p["data.n_train"] == str(config.n_train) and p["data.sha256"] == data.sha256(ablate.dataset(config))
    folder = tmp_path / "folder"
    folder.mkdir()
    for f in ("manifest.json", "losses.json"):
        shutil.copy(store.download(run.info.run_id, f), folder / f)
    mf = json.loads((folder / "manifest.json").read_text())
    assert mf["config"]["data"] == name and mf["data"]["name"] == name
    assert mf["data"]["dataset_digest"] == inp.dataset.digest
    assert mf["data"]["sha256"] == data.sha256(ablate.dataset(config))
    assert mf["seeds"]["data"] == config.stream_seeds()["data"]
    proc = initstudy("reproduce", folder / "manifest.json")
    assert proc.returncode == 0 and proc.stdout.startswith("reproduced bit for bit: 4 series"), proc.stdout + proc.stderr
    mf["data"]["sha256"] = "0" * 64
    (folder / "manifest.json").write_text(json.dumps(mf))
    assert reproduce.data_differences(mf, reproduce.load(folder / "manifest.json")[1]) == [
        f"data: {name} rebuilt here differs from the recorded set (sha256 {data.sha256(ablate.dataset(config))[:12]} "
        f"vs 000000000000)"]
