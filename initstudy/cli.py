"""Command line: `python -m initstudy <entry> --param value ...` (what MLproject calls).

Every parameter arrives as a string and is validated before MLflow is imported, so bad input
costs milliseconds and gets one line: what is wrong and what is allowed.
"""
import argparse
import dataclasses
import sys

from initstudy.config import ConfigError, parse


class UsageError(Exception):
    pass


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage block
        raise UsageError(message)


def _config_options(parser, cls):
    for f in dataclasses.fields(cls):
        flags = dict.fromkeys([f"--{f.name}", f"--{f.name.replace('_', '-')}"])
        parser.add_argument(*flags, dest=f.name, default=None, metavar="VALUE",
                            help=f"default {f.default!r}")


def _config(cls, args):
    raw = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if getattr(args, f.name) is not None}
    return parse(cls, raw)


def cmd_walk(args):
    from initstudy import jobs
    from initstudy.walk import WalkConfig

    config = _config(WalkConfig, args)
    jobs.init_names(args.init)
    out = jobs.walk(config, args.init, args.tracking_uri)
    print(f"walk: logged run {out['run_ids']['top']} ({', '.join(out['results'])})")


def build_parser():
    from initstudy.walk import WalkConfig

    parser = Parser(prog="initstudy", description=__doc__)
    sub = parser.add_subparsers(dest="entry", required=True, parser_class=Parser)
    p = sub.add_parser("walk", help="lab 00: per-layer activation variance under each init")
    p.add_argument("--init", default="all", help="all, or one init scheme")
    p.add_argument("--tracking-uri", "--tracking_uri", dest="tracking_uri", default=None)
    _config_options(p, WalkConfig)
    p.set_defaults(func=cmd_walk)
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


if __name__ == "__main__":
    sys.exit(main())
