"""What a command sent to the tracking store, kept until its run is closed, and written to a spool
folder when the tracking server is lost, so nothing computed is lost: `initstudy sync SPOOL --to URI`
records it later (run/sync.py).

No MLflow here: plain values in, one folder out.

    SPOOL/spool.json   {"tracking_uri", "written", "runs": [{run_id, experiment, name, parent, status,
                        start_time, tags, params, metrics: [[key, value, step, timestamp], ...]}]}
    SPOOL/artifacts/<run id>/...   the files the run uploaded (or was uploading)

Values are Python floats written with repr (json), so the series read back are the same bits.
"""
import atexit
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

VERSION = 1


def default_root() -> Path:
    """INITSTUDY_SPOOL, else ~/.initstudy/spool (outside the checkout `mlflow run` works in)."""
    return Path(os.environ.get("INITSTUDY_SPOOL") or Path.home() / ".initstudy" / "spool")


class Journal:
    """{run id: what was sent} for the runs still open; a run leaves it once the store has closed it."""

    def __init__(self):
        self.runs = {}
        self._files = None  # a temporary folder holding artifact copies, made on first use

    def start(self, run_id, experiment, name, tags=None, params=None, parent=None, start_time=None):
        self.runs[run_id] = {"run_id": run_id, "experiment": experiment, "name": name, "parent": parent,
                             "status": "RUNNING", "start_time": start_time or int(time.time() * 1000),
                             "tags": dict(tags or {}), "params": dict(params or {}), "metrics": []}

    def log(self, run_id, params=None, metrics=(), tags=None):
        run = self.runs.get(run_id)
        if run is None:
            return
        for k, v in (params or {}).items():
            run["params"].setdefault(k, str(v))  # a param is written once (the store refuses a change)
        run["tags"].update({k: str(v) for k, v in (tags or {}).items()})
        seen = run.setdefault("_seen", set())  # a batch the lost server refused comes again (RunSet's flush)
        for k, v, step, t in metrics:
            if (k, step, v) not in seen:
                seen.add((k, step, v))
                run["metrics"].append([k, v, step, t])

    def artifacts(self, run_id, folder):
        if run_id not in self.runs:
            return
        if self._files is None:
            self._files = tempfile.mkdtemp(prefix="initstudy-journal-")
            atexit.register(self.close)
        shutil.copytree(folder, Path(self._files) / run_id, dirs_exist_ok=True)

    def end(self, run_id, status, closed: bool):
        """closed: the store has the run closed, so it leaves the journal; else it is spooled with status."""
        if closed:
            self.runs.pop(run_id, None)
            if self._files:
                shutil.rmtree(Path(self._files) / run_id, ignore_errors=True)
        elif run_id in self.runs:
            self.runs[run_id]["status"] = status

    def write(self, tracking_uri: str, root: Path | None = None) -> Path:
        """The spool folder of every run still open (written whole, then renamed into place)."""
        root = Path(root or default_root())
        root.mkdir(parents=True, exist_ok=True)
        top = next(iter(self.runs), "none")
        final = root / f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{top[:8]}"
        tmp = Path(tempfile.mkdtemp(prefix=".spool-", dir=root))
        for rid in self.runs:
            if self._files and (Path(self._files) / rid).is_dir():
                shutil.copytree(Path(self._files) / rid, tmp / "artifacts" / rid)
        runs = [{k: v for k, v in r.items() if k != "_seen"} for r in self.runs.values()]
        doc = {"version": VERSION, "tracking_uri": tracking_uri, "written": time.time(), "runs": runs}
        (tmp / "spool.json").write_text(json.dumps(doc))
        os.replace(tmp, final)
        return final

    def close(self):
        if self._files:
            shutil.rmtree(self._files, ignore_errors=True)


def read(folder) -> dict:
    """spool.json of a spool folder (ValueError with one line if it is not one)."""
    path = Path(folder) / "spool.json"
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"{folder} is not a spool folder ({path.name}: {type(e).__name__})") from None
    if doc.get("version") != VERSION or not isinstance(doc.get("runs"), list):
        raise ValueError(f"{folder}: spool.json has no runs of version {VERSION}")
    return doc
