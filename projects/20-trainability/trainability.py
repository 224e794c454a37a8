"""Re-train the cells of the trainability study from the manifest.json beside this file and compare
each cell's numbers in phase.json bit for bit (exit 0 if identical). Made by `python scripts/export_run.py`.

    python trainability.py                        # every cell: costs what the study cost
    python trainability.py --cells 1.75:10,4:10   # chosen cells, SIGMA_W2:DEPTH[:SEED]
    python trainability.py --tolerance 1e-6       # another machine: relative tolerance, lists what differs
"""
import sys
from pathlib import Path

from initstudy.publish import reproduce

if __name__ == "__main__":
    sys.exit(reproduce.cli([str(Path(__file__).with_name("manifest.json")), *sys.argv[1:]], prog="trainability.py"))
