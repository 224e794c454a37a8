"""The width-transfer study's folder (projects/30-width-transfer): one parent run is the study (its children
are cells); transfer.png re-drawn from transfer.json; reproduce re-trains chosen cells (reproduce.py)."""
from initstudy.studies import Lab

USAGE = '''Re-train the cells of the width-transfer study from the manifest.json beside this file and compare
each cell's numbers in transfer.json bit for bit (exit 0 if identical). Made by `python scripts/export_run.py`.

    python {script}                            # every cell: costs what the study cost
    python {script} --cells mup:1024:-8,sp:64:-6  # chosen cells, PARAM:WIDTH:LOG2_LR[:SEED]
    python {script} --tolerance 1e-6           # another machine: relative tolerance, lists what differs
'''


LAB = Lab("parent", "transfer.json", "cells", "transfer.png", "initstudy.studies.transfer.plots:transfer",
          "transfer.py", "lab 30, learning-rate transfer",
          check="initstudy.studies.transfer.reproduce", usage=USAGE)
