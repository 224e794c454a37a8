"""Reproduce the residual study (projects/40-residual) cell by cell.

Each chosen cell of residual.json is re-trained from the manifest's config and the cell's own fields with
the pure function the run's worker used (residual.train_cell, BLAS pinned to one thread), and its numbers
are compared exactly: train and test accuracy, steps to NaN, diverged, weight seed, last loss and the loss series by
its sha256. `--cells` picks cells by label ("all", the default, costs what the study cost).
"""

from initstudy.core.config import ConfigError
from initstudy.publish import check
from initstudy.studies.residual import compute as residual
from initstudy.studies.residual.record import sweep_row

COMPARED = ("train_acc", "test_acc", "steps_to_nan", "diverged", "weight_seed", "last_loss", "loss_sha256")


def load(path) -> tuple[dict, dict]:
    mf, doc = check.read_cells(path, "residual.json")
    return mf, doc


def choose(cells: list, spec: str) -> list:
    """The cells named by spec ("all", or labels of residual.json, comma-separated); an unknown one is refused."""
    spec = str(spec or "all").strip()
    if spec == "all":
        return cells
    by_label = {c["label"]: c for c in cells}
    chosen = list(dict.fromkeys(s.strip() for s in spec.split(",") if s.strip()))
    unknown = [s for s in chosen if s not in by_label]
    if unknown or not chosen:
        raise ConfigError(f"cells must be 'all' or labels of residual.json (e.g. {cells[0]['label']!r}); "
                          f"got {', '.join(map(repr, unknown)) or repr(spec)}")
    return [by_label[s] for s in chosen]


def cell_config(doc: dict, cell: dict) -> residual.CellConfig:
    """A cell's config: the study's shared fields (residual.json's config, as the parent recorded it) and its own."""
    shared = {k: doc["config"][k] for k in residual.SHARED}
    c = residual.CellConfig(model=cell["model"], depth=cell["depth"], seed=cell["seed"], lr=cell["lr"], **shared)
    c.validate()
    return c


def prepare(path, spec: str = "all") -> dict:
    """The manifest, once it and the cells chosen are known good (else one ConfigError line)."""
    mf, doc = load(path)
    choose(doc["cells"], spec)
    return mf


def run(path, tol: float | None, spec: str = "all") -> int:
    mf, doc = load(path)
    cells = choose(doc["cells"], spec)
    init = doc["config"]["init"]
    configs = {c["label"]: cell_config(doc, c) for c in cells}
    wrong = [f"weights/{label}" for label, cfg in configs.items()
             if mf["seeds"].get(f"weights/{label}") != cfg.weight_seed(init)]
    if wrong:
        raise ConfigError(f"manifest seeds {', '.join(wrong)} do not match those derived from the cells' seeds")
    bad, near = check.recompute(cells, lambda c: sweep_row(residual.train_cell(configs[c["label"]], init)), COMPARED, tol)
    n = len(cells)
    what = f"{n} cell{'s' * (n != 1)} of {len(doc['cells'])} ({n * len(COMPARED)} values, loss series by sha256)"
    check.report(mf, path, what, f"{len(bad)} values differ in {what}", bad, near, tol)
    return 1 if bad else 0
