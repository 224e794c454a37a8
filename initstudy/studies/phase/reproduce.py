"""Reproduce the trainability study (projects/20-trainability) cell by cell.

Each chosen cell of phase.json is re-trained from the manifest's config with the same pure function
the run's worker used (phase.train_cell, BLAS pinned to one thread), and its recorded numbers are
compared exactly: the loss series by its sha256 (equal digests, equal series, bit for bit), the
last loss, train and test accuracy, final training loss, steps to NaN, weight seed and the theory
values. A full re-run costs what the study cost, so `--cells` picks cells: "all" (default) or
"SIGMA_W2:DEPTH[:SEED],...", e.g. --cells 1.75:10,4:10.
"""
import math

from initstudy.core import data

from initstudy.record import manifest, provenance

from initstudy.studies.phase import compute as phase

from initstudy.studies.phase.record import sweep_row
from initstudy.core.config import ConfigError, parse
from initstudy.publish import check

COMPARED = ("weight_seed", "loss_sha256", "last_loss", "train_acc", "test_acc", "final_train_loss", "steps_to_nan",
            "chi1", "xi_c", "six_xi_c")


def load(path) -> tuple[dict, phase.PhaseConfig, dict]:
    mf, doc = check.read_cells(path, "phase.json")
    config = parse(phase.PhaseConfig, manifest.config_from_lab(mf["config"]))
    return mf, config, doc


def choose(cells: list, spec: str) -> list:
    """The cells named by spec ("all", or "s:d[:seed],..."), in phase.json's order; an unknown one is refused."""
    spec = str(spec or "all").strip()
    if spec == "all":
        return cells
    picked = []
    for part in (p.strip() for p in spec.split(",") if p.strip()):
        try:
            bits = part.split(":")
            if len(bits) not in (2, 3):
                raise ValueError
            s, d, seed = float(bits[0]), int(bits[1]), int(bits[2]) if len(bits) == 3 else None
        except ValueError:
            raise ConfigError(f"cells must be 'all' or SIGMA_W2:DEPTH[:SEED],...; got {part!r}") from None
        match = [c for c in cells if c["sigma_w2"] == s and c["depth"] == d and (seed is None or c["seed"] == seed)]
        if not match:
            raise ConfigError(f"cells: no cell sigma_w2={s:g}, depth={d}{'' if seed is None else f', seed={seed}'} "
                              "in phase.json")
        picked += [c for c in match if c not in picked]
    if not picked:
        raise ConfigError(f"cells lists no cell; got {spec!r}")
    return picked


def differences(recorded: dict, now: dict, tol: float | None, compared: tuple = COMPARED) -> tuple[list, list]:
    """(lines beyond the tolerance, lines within it) for one cell (compared: the keys, another study's too)."""
    bad, near = [], []
    for k in compared:
        a, b = recorded.get(k), now.get(k)
        if a == b:
            continue
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (a, b))
        rel = abs(a - b) / max(abs(a), abs(b)) if numeric and math.isfinite(a - b) else math.inf
        line = f"{recorded['label']}: {k} recorded {a!r}, now {b!r}" + (f" (rel diff {rel:.3g})" if numeric else "")
        within = tol is not None and (rel <= tol or k == "loss_sha256")  # the digest: judged by the numbers beside it
        (near if within else bad).append(line)
    return bad, near


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
    mf, _, doc = load(path)
    choose(doc["cells"], spec)
    return mf


def run(path, tol: float | None, spec: str = "all") -> int:
    mf, config, doc = load(path)
    cells = choose(doc["cells"], spec)
    seeds = {f"weights/d{c['depth']}/s{c['seed']}": config.cell(c["sigma_w2"], c["depth"], c["seed"]).weight_seed(
        config.init) for c in cells}
    wrong = [k for k, v in seeds.items() if mf["seeds"].get(k) != v]
    if wrong:
        raise ConfigError(f"manifest seeds {', '.join(wrong)} do not match those derived from the cells' seeds")
    bad, near = data_differences(mf, config), []
    with provenance.pin_blas_threads():
        provenance.warm_up_blas()
        for c in cells:
            r = phase.train_cell(config.cell(c["sigma_w2"], c["depth"], c["seed"]), config.init)
            b, n = differences(c, sweep_row(r), tol)
            bad += b
            near += n
    what = f"{len(cells)} of {len(doc['cells'])} cells ({len(cells) * len(COMPARED)} values, loss series by sha256)"
    check.report(mf, path, what, f"{len(bad)} values differ in {what}", bad, near, tol)
    return 1 if bad else 0
