"""What every results document shares: JSON numbers (each study writes its own document in
studies/<study>/record.py: results.json, losses.json, and the series they hold).

JSON has no inf or nan: a non-finite number is written as null, and the `saturated` flag (walk)
or `steps_to_nan` (ablate) says why. Floats are written with repr, so they read back bit for bit.
"""
import json
import math

import numpy as np


def jsonable(values) -> list:
    return [None if v is None or not math.isfinite(v) else float(v) for v in np.asarray(values, float).tolist()]


def from_json(values) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], float)


def dumps(obj) -> str:
    return json.dumps(obj, indent=1, allow_nan=False) + "\n"


def lsuv_block(r) -> dict:
    """A data-dependent init's record ({"lsuv": ...}; reproduce compares it like every scalar), else nothing."""
    report = getattr(r, "lsuv", None)
    return {} if report is None else {"lsuv": report.as_dict()}
