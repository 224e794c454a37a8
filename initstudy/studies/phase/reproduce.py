"""Reproduce the trainability study (projects/20-trainability) cell by cell.

Each chosen cell of phase.json is re-trained from the manifest's config with the same pure function
the run's worker used (phase.train_cell, BLAS pinned to one thread), and its recorded numbers are
compared exactly: the loss series by its sha256 (equal digests, equal series, bit for bit), the
last loss, train and test accuracy, final training loss, steps to NaN, weight seed and the theory
values. A full re-run costs what the study cost, so `--cells` picks cells: "all" (default) or
"SIGMA_W2:DEPTH[:SEED],...", e.g. --cells 1.75:10,4:10.
"""
from initstudy.core import data
from initstudy.core.config import ConfigError
from initstudy.publish import check
from initstudy.studies.phase import compute as phase
from initstudy.studies.phase.record import sweep_row

COMPARED = ("weight_seed", "loss_sha256", "last_loss", "train_acc", "test_acc", "final_train_loss", "steps_to_nan",
            "chi1", "xi_c", "six_xi_c")
CELL = (("sigma_w2", float, "sigma_w2={:g}"), ("depth", int, "depth={}"), ("seed", int, "seed={}"))  # --cells


def choose(cells: list, spec: str) -> list:
    """The cells named by spec ("all", or "s:d[:seed],..."), in phase.json's order; an unknown one is refused."""
    return check.choose(cells, spec, CELL, "phase.json")


def data_differences(mf: dict, config: phase.PhaseConfig) -> list[str]:
    """The standardized set rebuilt here against the manifest's sha256 (runs since the data block; the
    committed default study predates it, its cells' numbers are the check)."""
    block = mf.get("data")
    if not isinstance(block, dict) or "sha256" not in block:
        return []
    now = data.sha256(phase.dataset(config))
    return [] if now == block["sha256"] else [f"data: {config.data} rebuilt here differs from the recorded set "
                                              f"(sha256 {now[:12]} vs {block['sha256'][:12]})"]


def prepare(path, spec: str = "all") -> dict:
    """The manifest, once it and the cells chosen are known good (else one ConfigError line)."""
    mf, _, doc = check.load(path, "phase.json", phase.PhaseConfig)
    choose(doc["cells"], spec)
    return mf


def run(path, tol: float | None, spec: str = "all") -> int:
    mf, config, doc = check.load(path, "phase.json", phase.PhaseConfig)
    cells = choose(doc["cells"], spec)
    seeds = {f"weights/d{c['depth']}/s{c['seed']}": config.cell(c["sigma_w2"], c["depth"], c["seed"]).weight_seed(
        config.init) for c in cells}
    wrong = [k for k, v in seeds.items() if mf["seeds"].get(k) != v]
    if wrong:
        raise ConfigError(f"manifest seeds {', '.join(wrong)} do not match those derived from the cells' seeds")

    def again(c):
        return sweep_row(phase.train_cell(config.cell(c["sigma_w2"], c["depth"], c["seed"]), config.init))

    bad, near = check.recompute(cells, again, COMPARED, tol)
    bad = data_differences(mf, config) + bad
    what = f"{len(cells)} of {len(doc['cells'])} cells ({len(cells) * len(COMPARED)} values, loss series by sha256)"
    check.report(mf, path, what, f"{len(bad)} values differ in {what}", bad, near, tol)
    return 1 if bad else 0
