"""Reproduce the transfer study (projects/30-width-transfer) cell by cell.

Each chosen cell of transfer.json is re-trained from the manifest's config with the function the run's
worker used (compute.train_cell, BLAS pinned to one thread) and its recorded numbers are compared
exactly: the loss series by sha256, the last loss, train loss and accuracy, test accuracy, divergence,
steps to NaN and the weight seed. `--cells` picks cells: "all" (default) or "PARAM:WIDTH:LOG2_LR[:SEED],...",
e.g. --cells mup:1024:-8,sp:64:-6:0.
"""

from initstudy.core import data
from initstudy.publish import check
from initstudy.studies.phase import compute as phase
from initstudy.studies.transfer import compute as T

COMPARED = ("weight_seed", "loss_sha256", "last_loss", "train_loss", "train_acc", "test_acc", "diverged",
            "steps_to_nan")
CELL = (("param", str, "{}"), ("width", int, "width {}"), ("log2_lr", float, "log2 lr {:g}"), ("seed", int, "seed {}"))


def choose(cells: list, spec: str) -> list:
    """The cells named by spec, in transfer.json's order; an unknown one is refused (one line)."""
    return check.choose(cells, spec, CELL, "transfer.json")


def prepare(path, spec: str = "all") -> dict:
    """The manifest, once it and the cells chosen are known good (else one ConfigError line)."""
    mf, _, doc = check.load(path, "transfer.json", T.TransferConfig)
    choose(doc["cells"], spec)
    return mf


def run(path, tol, spec: str = "all") -> int:
    from initstudy.studies.transfer.record import sweep_row

    mf, config, doc = check.load(path, "transfer.json", T.TransferConfig)
    cells = choose(doc["cells"], spec)

    def again(c):
        return sweep_row(T.train_cell(config.cell(c["param"], c["width"], c["log2_lr"], c["seed"]), config.init))

    bad, near = check.recompute(cells, again, COMPARED, tol)
    block = mf.get("data") or {}
    if "sha256" in block and data.sha256(phase.dataset(config)) != block["sha256"]:
        bad.insert(0, f"data: {config.data} rebuilt here differs from the recorded set")
    what = f"{len(cells)} of {len(doc['cells'])} cells ({len(cells) * len(COMPARED)} values, loss series by sha256)"
    check.report(mf, path, what, f"{len(bad)} values differ in {what}", bad, near, tol)
    return 1 if bad else 0
