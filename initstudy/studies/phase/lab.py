"""The trainability study's folder (projects/20-trainability): one parent run is the study (its children
are cells); phase.png re-drawn from phase.json; reproduce re-trains chosen cells (reproduce.py)."""
from initstudy.studies import Lab

USAGE = '''Re-train the cells of the trainability study from the manifest.json beside this file and compare
each cell's numbers in phase.json bit for bit (exit 0 if identical). Made by `python scripts/export_run.py`.

    python {script}                        # every cell: costs what the study cost
    python {script} --cells 1.75:10,4:10   # chosen cells, SIGMA_W2:DEPTH[:SEED]
    python {script} --tolerance 1e-6       # another machine: relative tolerance, lists what differs
'''


def draw(doc: dict, path):
    from initstudy.studies.phase import figures
    from initstudy.studies.phase.verdict import TRAINED_ACC

    figures.phase_diagram(doc, path, TRAINED_ACC)


LAB = Lab("parent", "phase.json", "cells", "phase.png", draw, "trainability.py", "the trainability phase diagram",
          check="initstudy.studies.phase.reproduce", usage=USAGE)
