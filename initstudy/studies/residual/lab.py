"""The residual study's folder (projects/40-residual): one parent run is the study (its children are cells);
residual.png re-drawn from residual.json; reproduce re-trains chosen cells (reproduce.py)."""
from initstudy.studies import Lab

USAGE = '''Re-train the cells of the residual study from the manifest.json beside this file and compare each
cell's numbers in residual.json bit for bit (exit 0 if identical). Made by `python scripts/export_run.py`.

    python {script}                                       # every cell: costs what the study cost
    python {script} --cells "model=fixup d10 s0 lr=0.01"  # chosen cells by label, comma-separated
    python {script} --tolerance 1e-6                      # another machine: relative tolerance
'''


LAB = Lab("parent", "residual.json", "cells", "residual.png", "initstudy.studies.residual.plot:accuracy_vs_depth",
          "residual.py", "the residual study",
          check="initstudy.studies.residual.reproduce", usage=USAGE)
