"""What every reproduce check shares (publish/reproduce.py's and each study's own, e.g.
studies/phase/reproduce.py): the results document read with one clear line on failure, the verdict's
lines, how two series compare (bit for bit, NaN equal to NaN), and how this machine differs from the
recorded one. Imports no study: a study's check can use it.
"""
import json
import math
from pathlib import Path

import numpy as np

from initstudy.core.config import ConfigError
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
