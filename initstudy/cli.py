"""Command line: `python -m initstudy <entry> --param value ...` (what MLproject calls).

Every parameter arrives as a string and is validated before MLflow is imported, so bad input
costs milliseconds and gets one line: what is wrong and what is allowed.
"""
import argparse
import sys

from initstudy.config import ConfigError


class UsageError(Exception):
    pass


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage block
        raise UsageError(message)


# `mlflow run` entry points: initstudy.jobs.<name> has HELP, add_arguments(parser), main(args)
ENTRIES = ("walk", "ablate", "sweep", "diagnose")
# other commands: initstudy.<name> has HELP, add_arguments(parser), main(args)
TOOLS = ("reproduce",)


def build_parser():
    import importlib

    parser = Parser(prog="initstudy", description=__doc__)
    sub = parser.add_subparsers(dest="entry", required=True, parser_class=Parser)
    for name in ENTRIES + TOOLS:
        module = importlib.import_module(f"initstudy.jobs.{name}" if name in ENTRIES else f"initstudy.{name}")
        p = sub.add_parser(name, help=module.HELP)
        module.add_arguments(p)
        p.set_defaults(func=module.main)
    return parser


def main(argv=None) -> int:
    entry = "initstudy"
    try:
        args = build_parser().parse_args(argv)
        entry = f"initstudy {args.entry}"
        args.func(args)
        return 0
    except (UsageError, ConfigError) as e:
        print(f"{entry}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{entry}: interrupted; runs closed as KILLED", file=sys.stderr)
        return 130
    except Exception as e:  # a job's failure or the tracking store's: one line, exit 1
        from initstudy import jobs, tracking

        if isinstance(e, jobs.Interrupted):
            print(f"{entry}: terminated ({e}); what was computed is recorded, runs closed as KILLED", file=sys.stderr)
            return 143
        line = str(e) if isinstance(e, jobs.JobFailed) else tracking.describe_error(e)
        if line is None:
            raise
        print(f"{entry}: error: {line}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
