#!/usr/bin/env python
"""Export finished MLflow runs to the committed lab folders (see initstudy/publish/export.py).

    python scripts/export_run.py                    # newest complete walk and ablate sets -> projects/
    python scripts/export_run.py --run-id ID [--out DIR] [--force] [--allow-unfinished] [--tracking-uri URI]
"""
import sys

from initstudy.run.cli import exit_process
from initstudy.publish.export import run_cli

if __name__ == "__main__":
    exit_process(run_cli(sys.argv[1:]))
