"""`initstudy sync SPOOL --to URI`: record a spool folder (what a command computed while its tracking
server was lost, record/spool.py) as new runs: the same params, tags and series, bit for bit, and the
artifacts; each ends as the spool says (KILLED: cut short; FINISHED: it was complete). The copy the lost
server still holds RUNNING is closed KILLED and points at the new run (tag initstudy.moved_to)."""
import json
from pathlib import Path

from initstudy.core.config import ConfigError

HELP = "record a spool folder (kept when the tracking server was lost) into a tracking store"
SYNCED = "synced.json"  # written into the spool folder once recorded: {old run id: new run id}


def add_arguments(parser):
    parser.add_argument("spool", help="the folder the failed command named")
    parser.add_argument("--to", dest="tracking_uri", default=None, help="the tracking URI (default MLFLOW_TRACKING_URI)")


def main(args):
    from initstudy.record import spool, tracking

    folder = Path(args.spool)
    try:
        doc = spool.read(folder)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    if (folder / SYNCED).is_file():
        raise ConfigError(f"{folder} is recorded already ({SYNCED}: {(folder / SYNCED).read_text().strip()})")
    tracker = tracking.Tracker(args.tracking_uri)
    new = {}
    for run in doc["runs"]:  # a parent comes before its children
        new[run["run_id"]] = _record(tracker, folder, run, new)
    stale = [old for old in new if _close_stale(tracker, old, new[old])]
    launcher = {r["tags"].get(tracking.LAUNCHER_TAG) for r in doc["runs"]} - {None}
    stale += [rid for rid in launcher if _close_stale(tracker, rid, None)]
    (folder / SYNCED).write_text(json.dumps(new))
    print(f"sync: {len(new)} runs recorded in {tracking.redact_uri(tracker.uri)} ("
          + ", ".join(f"{o[:8]} -> {n}" for o, n in new.items()) + f"); {len(stale)} stale RUNNING runs closed as KILLED")


def _record(tracker, folder, run, new) -> str:
    from initstudy.record import tracking

    tags = {**run["tags"], "initstudy.synced_from": run["run_id"]}
    if run["parent"]:
        tags[tracking.PARENT_TAG] = new.get(run["parent"], run["parent"])
    files = folder / "artifacts" / run["run_id"]
    return tracker.replay({**run, "tags": tags}, files if files.is_dir() else None)


def _close_stale(tracker, old: str, new: str | None) -> bool:
    """The run the lost server kept, if this store has it and it is still RUNNING."""
    from initstudy.record import tracking

    run = tracker.get_run(old)
    if run is None or run.info.status != "RUNNING":
        return False
    if new:
        tracker.client.set_tag(old, tracking.MOVED_TAG, new)
    tracker.client.set_terminated(old, status="KILLED")
    return True
