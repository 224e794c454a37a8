"""Reproduce the transfer study (projects/30-width-transfer) cell by cell.

Each chosen cell of transfer.json is re-trained from the manifest's config with the function the run's
worker used (compute.train_cell, BLAS pinned to one thread) and its recorded numbers are compared
exactly: the loss series by sha256, the last loss, train loss and accuracy, test accuracy, divergence,
steps to NaN and the weight seed. `--cells` picks cells: "all" (default) or "PARAM:WIDTH:LOG2_LR[:SEED],...",
e.g. --cells mup:1024:-8,sp:64:-6:0.
"""

from initstudy.core import data
from initstudy.core.config import ConfigError, parse
from initstudy.publish import check
from initstudy.record import manifest, provenance
from initstudy.studies.phase import compute as phase
from initstudy.studies.phase.reproduce import differences as _differences
from initstudy.studies.transfer import compute as T

COMPARED = ("weight_seed", "loss_sha256", "last_loss", "train_loss", "train_acc", "test_acc", "diverged",
            "steps_to_nan")


def load(path) -> tuple[dict, T.TransferConfig, dict]:
    mf, doc = check.read_cells(path, "transfer.json")
    config = parse(T.TransferConfig, manifest.config_from_lab(mf["config"]))
    return mf, config, doc


def choose(cells: list, spec: str) -> list:
    """The cells named by spec, in transfer.json's order; an unknown one is refused (one line)."""
    spec = str(spec or "all").strip()
    if spec == "all":
        return cells
    picked = []
    for part in (p.strip() for p in spec.split(",") if p.strip()):
        try:
            bits = part.split(":")
            if len(bits) not in (3, 4):
                raise ValueError
            p, w, lr, seed = bits[0], int(bits[1]), float(bits[2]), int(bits[3]) if len(bits) == 4 else None
        except ValueError:
            raise ConfigError(f"cells must be 'all' or PARAM:WIDTH:LOG2_LR[:SEED],...; got {part!r}") from None
        match = [c for c in cells if (c["param"], c["width"], c["log2_lr"]) == (p, w, lr)
                 and (seed is None or c["seed"] == seed)]
        if not match:
            raise ConfigError(f"cells: no cell {p}, width {w}, log2 lr {lr:g}{'' if seed is None else f', seed {seed}'} "
                              "in transfer.json")
        picked += [c for c in match if c not in picked]
    return picked


def differences(recorded: dict, now: dict, tol) -> tuple[list, list]:
    return _differences(recorded, now, tol, COMPARED)


def prepare(path, spec: str = "all") -> dict:
    """The manifest, once it and the cells chosen are known good (else one ConfigError line)."""
    mf, _, doc = load(path)
    choose(doc["cells"], spec)
    return mf


def run(path, tol, spec: str = "all") -> int:
    from initstudy.studies.transfer.record import sweep_row

    mf, config, doc = load(path)
    cells = choose(doc["cells"], spec)
    bad, near = [], []
    block = mf.get("data") or {}
    if "sha256" in block and data.sha256(phase.dataset(config)) != block["sha256"]:
        bad.append(f"data: {config.data} rebuilt here differs from the recorded set")
    with provenance.pin_blas_threads():
        provenance.warm_up_blas()
        for c in cells:
            r = T.train_cell(config.cell(c["param"], c["width"], c["log2_lr"], c["seed"]), config.init)
            b, n = differences(c, sweep_row(r), tol)
            bad += b
            near += n
    what = f"{len(cells)} of {len(doc['cells'])} cells ({len(cells) * len(COMPARED)} values, loss series by sha256)"
    check.report(mf, path, what, f"{len(bad)} values differ in {what}", bad, near, tol)
    return 1 if bad else 0
