"""The width-transfer study's folder (projects/30-width-transfer): one parent run is the study (its children
are cells); transfer.png re-drawn from transfer.json; reproduce re-trains chosen cells (reproduce.py)."""
from initstudy.studies import Lab

SCRIPT = '''"""Re-train the cells of the width-transfer study from the manifest.json beside this file and compare
each cell's numbers in transfer.json bit for bit (exit 0 if identical). Made by `python scripts/export_run.py`.

    python {script}                            # every cell: costs what the study cost
    python {script} --cells mup:1024:-8,sp:64:-6  # chosen cells, PARAM:WIDTH:LOG2_LR[:SEED]
    python {script} --tolerance 1e-6           # another machine: relative tolerance, lists what differs
"""
import sys
from pathlib import Path

from initstudy.publish import reproduce

if __name__ == "__main__":
    sys.exit(reproduce.cli([str(Path(__file__).with_name("manifest.json")), *sys.argv[1:]], prog="{script}"))
'''


def draw(doc: dict, path):
    from initstudy.studies.transfer import plots

    plots.transfer(doc, path)


LAB = Lab("parent", "transfer.json", "cells", "transfer.png", draw, "transfer.py", "lab 30, learning-rate transfer",
          check="initstudy.studies.transfer.reproduce", script_text=SCRIPT)
