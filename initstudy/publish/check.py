"""What every reproduce check shares (publish/reproduce.py's and each study's own, e.g.
studies/phase/reproduce.py): the results document read with one clear line on failure, the verdict's
lines, how two series compare (bit for bit, NaN equal to NaN), and how this machine differs from the
recorded one; for a study checked cell by cell, the cells `--cells` names and each one computed again and
compared. Imports no study: a study's check can use it.
"""
import json
import math
from pathlib import Path

import numpy as np

from initstudy.core.config import ConfigError, parse
from initstudy.record import provenance


def read_json(doc_path: Path):
    """The results document beside a manifest; unreadable or not JSON: one ConfigError line."""
    try:
        return json.loads(doc_path.read_text())
    except OSError as e:
        raise ConfigError(f"cannot read {doc_path}: {e.strerror or e}") from None
    except json.JSONDecodeError as e:
        raise ConfigError(f"{doc_path} is not valid JSON (line {e.lineno}: {e.msg})") from None


def read_cells(path, doc_name: str) -> tuple[dict, dict]:
    """A lab folder reproduced cell by cell (phase, transfer, residual): its manifest and the document
    beside it that lists every cell under "cells"; one line where either is missing or malformed."""
    from initstudy.record import manifest

    try:
        mf = manifest.read(path)
    except manifest.ManifestError as e:
        raise ConfigError(str(e)) from None
    doc_path = Path(path).with_name(doc_name)
    doc = read_json(doc_path)
    if not isinstance(doc, dict) or not isinstance(doc.get("cells"), list) or not doc["cells"]:
        raise ConfigError(f"{doc_path} has no 'cells'")
    return mf, doc


def load(path, doc_name: str, config_cls) -> tuple:
    """(manifest, the study's config parsed from it, the cells' document) of a lab folder reproduced cell by cell."""
    from initstudy.record import manifest

    mf, doc = read_cells(path, doc_name)
    return mf, parse(config_cls, manifest.config_from_lab(mf["config"])), doc


def choose(cells: list, spec: str, parts: tuple, doc_name: str) -> list:
    """The cells named by spec, in the document's order: "all", or comma-separated values of the cell's
    parts ((field, type, how it reads), e.g. ("depth", int, "depth={}")) joined by ":", the last one optional.
    A malformed part, one that names no cell, or no cell at all: one ConfigError line."""
    spec = str(spec or "all").strip()
    if spec == "all":
        return cells
    form = ":".join(f.upper() for f, _, _ in parts[:-1]) + f"[:{parts[-1][0].upper()}]"
    picked = []
    for part in (p.strip() for p in spec.split(",") if p.strip()):
        bits = part.split(":")
        try:
            if len(bits) not in (len(parts) - 1, len(parts)):
                raise ValueError
            want = [(f, kind(b), says) for (f, kind, says), b in zip(parts, bits)]
        except ValueError:
            raise ConfigError(f"cells must be 'all' or {form},...; got {part!r}") from None
        match = [c for c in cells if all(c[f] == v for f, v, _ in want)]
        if not match:
            raise ConfigError(f"cells: no cell {', '.join(says.format(v) for _, v, says in want)} in {doc_name}")
        picked += [c for c in match if c not in picked]
    if not picked:
        raise ConfigError(f"cells lists no cell; got {spec!r}")
    return picked


def differences(recorded: dict, now: dict, tol: float | None, compared: tuple) -> tuple[list, list]:
    """(lines beyond the tolerance, lines within it) for one cell: its values of the keys compared."""
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


def recompute(cells: list, again, compared: tuple, tol) -> tuple[list, list]:
    """Each cell computed again (again(cell) -> its row now), BLAS pinned to one thread as on the run's
    workers, and compared with its recorded row: (lines beyond the tolerance, lines within it)."""
    bad, near = [], []
    with provenance.pin_blas_threads():
        provenance.warm_up_blas()
        for c in cells:
            b, n = differences(c, again(c), tol, compared)
            bad += b
            near += n
    return bad, near


def diff(recorded: np.ndarray, now: np.ndarray) -> tuple[bool, float, float, str]:
    """(bit-identical, max abs diff, max rel diff, note) with NaN equal to NaN."""
    if recorded.shape != now.shape:
        return False, math.inf, math.inf, f"length {len(recorded)} recorded, {len(now)} now"
    if np.array_equal(recorded, now, equal_nan=True):
        return True, 0.0, 0.0, ""
    nan_r, nan_n = np.isnan(recorded), np.isnan(now)
    if not np.array_equal(nan_r, nan_n):
        first = int(np.argmax(nan_r != nan_n))
        return False, math.inf, math.inf, f"NaN at different positions (first at index {first})"
    ok = ~nan_r
    a = np.abs(recorded[ok] - now[ok])
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(a == 0, 0.0, a / np.maximum(np.abs(recorded[ok]), np.abs(now[ok])))
    return False, float(a.max()), float(rel.max()), ""


def environment_differences(mf: dict) -> list[str]:
    here = provenance.collect()
    out = []
    for part in ("versions", "hardware", "blas"):
        rec, now = mf.get(part) or {}, here[part]
        # a package an older record does not list was not a dependency of that run (scipy came with gelu)
        for k in sorted(set(rec) if part == "versions" else set(rec) | set(now)):
            if part == "blas" and k == "threads":
                continue  # the run pinned it; so do we
            if rec.get(k) != now.get(k):
                out.append(f"{part}.{k}: recorded {rec.get(k)!r}, here {now.get(k)!r}")
    if mf.get("blas", {}).get("threads") not in (None, provenance.BLAS_THREADS):
        out.append(f"blas.threads: recorded {mf['blas']['threads']!r}, re-run pinned to {provenance.BLAS_THREADS}")
    return out


def report(mf: dict, path, what: str, differ: str, bad: list, near: list, tol):
    """The verdict: bit for bit, within the tolerance, or not reproduced with each difference; and where
    it is not bit for bit, how this machine differs from the recorded one."""
    where = f"({mf['experiment']}, {Path(path)})"
    if not bad and not near:
        print(f"reproduced bit for bit: {what} {where}")
    elif not bad:
        print(f"reproduced within relative tolerance {tol:g}, not bit for bit: {what} {where}")
        print("\n".join(f"  {l}" for l in near))
    else:
        print(f"NOT reproduced: {differ}{'' if tol is None else f' beyond relative tolerance {tol:g}'} {where}")
        print("\n".join(f"  {l}" for l in bad + near))
    if bad or tol is not None:
        env = environment_differences(mf)
        print("recorded environment vs this machine: " + ("identical (versions, hardware, BLAS)" if not env else ""))
        for line in env:
            print(f"  {line}")
