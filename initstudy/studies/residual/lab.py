"""The residual study's folder (projects/40-residual): one parent run is the study (its children are cells);
residual.png re-drawn from residual.json; reproduce re-trains chosen cells (reproduce.py)."""
from initstudy.studies import Lab

SCRIPT = '''"""Re-train the cells of the residual study from the manifest.json beside this file and compare each
cell's numbers in residual.json bit for bit (exit 0 if identical). Made by `python scripts/export_run.py`.

    python {script}                                       # every cell: costs what the study cost
    python {script} --cells "model=fixup d10 s0 lr=0.01"  # chosen cells by label, comma-separated
    python {script} --tolerance 1e-6                      # another machine: relative tolerance
"""
import sys
from pathlib import Path

from initstudy.publish import reproduce

if __name__ == "__main__":
    sys.exit(reproduce.cli([str(Path(__file__).with_name("manifest.json")), *sys.argv[1:]], prog="{script}"))
'''


def draw(doc: dict, path):
    from initstudy.studies.residual import plot

    plot.accuracy_vs_depth(doc, path)


LAB = Lab("parent", "residual.json", "cells", "residual.png", draw, "residual.py", "the residual study",
          check="initstudy.studies.residual.reproduce", script_text=SCRIPT)
