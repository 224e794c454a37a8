"""`initstudy close RUN_ID`: close a run left RUNNING by a process that is gone (SIGKILL, a lost
machine), and its RUNNING children, as KILLED. MLflow 3.17 has no command for it and its UI cannot
set a status. Refused while the run's owner still runs on this host."""
import re
import sys

from initstudy.core.config import ConfigError

HELP = "close a run left RUNNING by a process that is gone (and its RUNNING children) as KILLED"


def add_arguments(parser):
    parser.add_argument("run_id", help="the run (a sweep's parent: its children too)")
    parser.add_argument("--tracking-uri", "--tracking_uri", dest="tracking_uri", default=None)


def main(args):
    rid = str(args.run_id).strip()
    if not re.fullmatch(r"[0-9a-f]{32}", rid):
        raise ConfigError(f"run id must be 32 hex digits; got {rid!r}")
    from initstudy.record import tracking

    tracker = tracking.Tracker(args.tracking_uri)
    run = tracker.get_run(rid)
    if run is None:
        raise ConfigError(f"no run {rid} in the tracking store {tracking.redact_uri(tracker.uri)}")
    n = stale(tracker, run, "close")
    print(f"close: {n} runs closed as KILLED (run {rid} and its RUNNING children)" if n else
          f"close: run {rid} is {run.info.status} and none of its children is RUNNING; nothing to close")


def stale(tracker, run, who: str) -> int:
    """Close `run` and its RUNNING children as KILLED once its owner is known gone (or cannot be
    known: another host, an old run); the count closed. ConfigError while the owner still runs here."""
    from initstudy.record import tracking
    from initstudy.run import signals

    rid, tags = run.info.run_id, run.data.tags
    if run.info.status == "RUNNING" and signals.owner_state(tags) == "alive":
        raise ConfigError(f"{who}: run {rid} is still computing ({signals.describe_owner(tags)}); stop that process "
                          "first (Ctrl-C or kill PID)")
    runs = [run] + tracker.search(f"tags.`{tracking.PARENT_TAG}` = '{rid}' and attributes.status = 'RUNNING'")
    closing = [r.info.run_id for r in runs if r.info.status == "RUNNING"]
    for r in closing:
        tracker.end(r, "KILLED")
    return len(closing)
