"""Command line: `python -m initstudy <entry> --param value ...` (what MLproject calls).

Every parameter arrives as a string and is validated before MLflow is imported, so bad input
costs milliseconds and gets one line: what is wrong and what is allowed.
"""
import argparse
import sys

from initstudy.core.config import ConfigError


class UsageError(Exception):
    pass


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage block
        raise UsageError(message)


# the commands beside the studies' (each study's job module is its command: studies.STUDIES); every
# module has HELP, add_arguments(parser), main(args)
COMMANDS = {"sweep": "initstudy.run.sweep", "reproduce": "initstudy.publish.reproduce",
            "close": "initstudy.run.close", "sync": "initstudy.run.sync"}


def commands() -> dict:
    """{command: its module, not yet imported}: the registry's studies, then sweep, reproduce, close and sync."""
    from initstudy import studies

    return {**{name: s.job for name, s in studies.STUDIES.items()}, **COMMANDS}


def build_parser(argv=None):
    """The parser; when argv names a command, only that command's module is imported (the others
    would cost ~0.5 s of matplotlib and friends before an ablate run's workers can start)."""
    from initstudy.studies import load

    argv = sys.argv[1:] if argv is None else argv
    modules = commands()
    chosen = argv[0] if argv and argv[0] in modules else None
    parser = Parser(prog="initstudy", description=__doc__)
    sub = parser.add_subparsers(dest="entry", required=True, parser_class=Parser)
    for name, ref in modules.items():
        if chosen not in (None, name):
            sub.add_parser(name)  # listed, not loaded: only the chosen command's arguments are parsed
            continue
        module = load(ref)
        p = sub.add_parser(name, help=module.HELP)
        module.add_arguments(p)
        p.set_defaults(func=module.main)
    return parser


def exit_code(prog: str, e: BaseException) -> int:
    """Print the one line for a refused or failed command and give its exit code; an error that
    is not ours to describe (a bug) is raised again, traceback and all."""
    from initstudy.run import runs as jobs
    from initstudy.record import manifest, tracking

    if isinstance(e, (UsageError, ConfigError, manifest.ManifestError)):
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    if isinstance(e, KeyboardInterrupt):
        print(f"{prog}: interrupted; runs closed as KILLED", file=sys.stderr)
        return 130
    if isinstance(e, jobs.Interrupted):
        print(f"{prog}: terminated ({e}); what was computed is recorded, runs closed as KILLED", file=sys.stderr)
        return 143
    line = str(e) if isinstance(e, jobs.JobFailed) else tracking.describe_error(e)
    if line is None:
        raise e
    print(f"{prog}: error: {line}", file=sys.stderr)  # a job's failure or the tracking store's: exit 1
    if isinstance(e, jobs.TrackingLost):
        from initstudy.run import signals

        signals.stop_waiting_launcher()
    return 1


def run_tool(prog: str, description: str, add_arguments, run, argv=None) -> int:
    """A command of its own (scripts/export_run.py, a lab folder's script): parse, run(args) -> exit
    code (None is 0), and the same one-line errors as `initstudy`."""
    parser = Parser(prog=prog, description=description)
    add_arguments(parser)
    try:
        return run(parser.parse_args(argv)) or 0
    except (Exception, KeyboardInterrupt) as e:
        return exit_code(prog, e)


def exit_process(code: int):
    """End a command's process. CPython's garbage collection at shutdown walks every object MLflow
    and matplotlib left (measured: 1.3 s of a run's wall, 0.24 s frozen); the OS frees them anyway."""
    import gc

    gc.freeze()
    raise SystemExit(code)


def main(argv=None) -> int:
    entry = "initstudy"
    try:
        args = build_parser(argv).parse_args(argv)
        entry = f"initstudy {args.entry}"
        from initstudy.run import signals

        signals.end_with_launcher()  # ended (runs closed KILLED) with its `mlflow run`, not orphaned
        args.func(args)
        return 0
    except (Exception, KeyboardInterrupt) as e:
        return exit_code(entry, e)


def console():
    """The `initstudy` command and `python -m initstudy`."""
    exit_process(main())


if __name__ == "__main__":
    console()
