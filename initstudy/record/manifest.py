"""The lab manifest: build, validate, read.

The lab's schema and key names (experiment, date, seed, versions, hardware, config,
results_summary) plus what a re-run needs that the lab leaves out: the per-init derived seeds, the
BLAS pin, git, and where the runs live in MLflow. Versions of this schema (schema_version):
  1  every manifest written before the key (all committed projects/*/manifest.json): read as 2 is
  2  the same keys, and schema_version
A reader takes every version up to SCHEMA_VERSION and refuses a newer one in one line.
"""
import json
from pathlib import Path

REQUIRED = ("experiment", "date", "seed", "versions", "hardware", "config", "results_summary", "seeds", "blas",
            "git", "mlflow")

SCHEMA_VERSION = 2

# our config field -> the lab's key; the manifest's config uses the lab's names
LAB_KEYS = {"width": "hidden_dim", "batch": "batch_size"}


class ManifestError(ValueError):
    """A manifest that cannot be used: one line saying why."""


def config_to_lab(config: dict) -> dict:
    return {LAB_KEYS.get(k, k): v for k, v in config.items()}


def config_from_lab(config: dict) -> dict:
    back = {v: k for k, v in LAB_KEYS.items()}
    return {back.get(k, k): v for k, v in config.items() if k != "inits"}


def build(*, experiment, date, seed, provenance, config, inits, results_summary, seeds, mlflow) -> dict:
    return {
        "schema_version": SCHEMA_VERSION,
        "experiment": experiment,
        "date": date,
        "seed": seed,
        "versions": provenance["versions"],
        "hardware": provenance["hardware"],
        "config": {**config_to_lab(config), **({"inits": list(inits)} if inits else {})},
        "results_summary": results_summary,
        "seeds": seeds,
        "blas": provenance["blas"],
        "git": provenance["git"],
        "mlflow": mlflow,
    }


def validate(manifest) -> dict:
    if not isinstance(manifest, dict):
        raise ManifestError("manifest must be a JSON object")
    missing = [k for k in REQUIRED if k not in manifest]
    if missing:
        raise ManifestError(f"manifest is missing keys: {', '.join(missing)}")
    version = manifest.get("schema_version", 1)  # version 1 has no key
    if type(version) is not int or not 1 <= version <= SCHEMA_VERSION:
        raise ManifestError(f"manifest schema_version must be an integer in 1..{SCHEMA_VERSION} (this initstudy "
                            f"reads those); got {version!r}")
    if not isinstance(manifest["config"], dict):
        raise ManifestError("manifest config must be a JSON object")
    if manifest["config"].get("inits") is not None:  # a study without init schemes (lab 02) records none
        need_inits(manifest)
    return manifest


def need_inits(manifest: dict):
    """A study run per init (its registry Lab says so) lists them: a non-empty list."""
    inits = manifest["config"].get("inits")
    if not (isinstance(inits, list) and inits):
        raise ManifestError("manifest config must list its inits")


def read(path) -> dict:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise ManifestError(f"cannot read manifest {path}: {e.strerror or e}") from None
    try:
        manifest = json.loads(text)
    except json.JSONDecodeError as e:
        raise ManifestError(f"manifest {path} is not valid JSON (line {e.lineno}: {e.msg})") from None
    return validate(manifest)


def dumps(obj) -> str:
    """Stable JSON text: sorted keys where order carries no meaning is left to the caller."""
    return json.dumps(obj, indent=2, allow_nan=False) + "\n"
