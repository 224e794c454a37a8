"""The MNIST-1D paper's numbers (Greydanus & Kobak): test accuracy 68 % for an MLP, 32 % for logistic
regression. Ours, through the pure numerics (ablate.train: our SGD with momentum), on the set
data=mnist1d builds (data_seed 42, the package's own default seed): the shallow ReLU MLP of
docs/datasets.md reaches >= 0.62 on every one of 3 weight seeds, and a single Linear layer (depth 1:
logistic regression) lands on the paper's 32 %. The per-seed numbers docs/datasets.md states are
pinned here (within 0.01: another BLAS kernel rounds differently)."""
import pytest

from initstudy.studies.ablate import compute as ablate
from initstudy.studies.ablate.compute import AblateConfig

pytestmark = pytest.mark.usefixtures("one_blas_thread")

# `mlflow run . -e ablate -P data=mnist1d -P init=kaiming -P depth=3 -P width=256 -P lr=0.1 -P batch=100 -P steps=2000`
MLP = dict(data="mnist1d", depth=3, width=256, lr=0.1, batch=100, steps=2000)
MLP_ACC = {0: 0.698, 1: 0.705, 2: 0.695}  # final_val_acc (the package's 1000 test examples) per seed
PAPER_WIDTH = {**MLP, "width": 100}  # the paper's hidden width (its MLP adds a residual 2nd layer, trains with Adam)
PAPER_WIDTH_ACC = {0: 0.659, 1: 0.644, 2: 0.636}  # below 68 %: the gap width 256 closes under our SGD
LOGREG = dict(data="mnist1d", depth=1, lr=0.01, batch=100, steps=4000)
LOGREG_ACC = {0: 0.326, 1: 0.325, 2: 0.328}
QUIET = dict(eval_every=10**6, diag_every=10**6)  # val after the last step only: the same training, less work


@pytest.fixture(scope="module")
def mnist1d():
    return ablate.dataset(AblateConfig(data="mnist1d"))  # the weight seed does not change the set: built once


def accuracy(settings: dict, seed: int, ds) -> float:
    config = AblateConfig(seed=seed, **settings, **QUIET)
    return ablate.train(config, "kaiming", ds).final_val_acc


@pytest.mark.parametrize("seed", sorted(MLP_ACC))
def test_shallow_relu_mlp_reaches_062_on_mnist1d(seed, mnist1d):
    acc = accuracy(MLP, seed, mnist1d)
    assert acc >= 0.62, acc
    assert abs(acc - MLP_ACC[seed]) <= 0.01, (acc, MLP_ACC[seed])


@pytest.mark.parametrize("seed", sorted(PAPER_WIDTH_ACC))
def test_at_the_papers_width_our_sgd_falls_short_of_68_percent(seed, mnist1d):
    acc = accuracy(PAPER_WIDTH, seed, mnist1d)
    assert 0.62 <= acc < 0.68, acc
    assert abs(acc - PAPER_WIDTH_ACC[seed]) <= 0.01, (acc, PAPER_WIDTH_ACC[seed])


@pytest.mark.parametrize("seed", sorted(LOGREG_ACC))
def test_logistic_regression_meets_the_papers_32_percent(seed, mnist1d):
    acc = accuracy(LOGREG, seed, mnist1d)
    assert abs(acc - 0.32) <= 0.02, acc
    assert abs(acc - LOGREG_ACC[seed]) <= 0.01, (acc, LOGREG_ACC[seed])
