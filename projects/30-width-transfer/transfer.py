"""Re-train the cells of the width-transfer study from the manifest.json beside this file and compare
each cell's numbers in transfer.json bit for bit (exit 0 if identical). Made by `python scripts/export_run.py`.

    python transfer.py                            # every cell: costs what the study cost
    python transfer.py --cells mup:1024:-8,sp:64:-6  # chosen cells, PARAM:WIDTH:LOG2_LR[:SEED]
    python transfer.py --tolerance 1e-6           # another machine: relative tolerance, lists what differs
"""
import sys
from pathlib import Path

from initstudy.publish import reproduce

if __name__ == "__main__":
    sys.exit(reproduce.cli([str(Path(__file__).with_name("manifest.json")), *sys.argv[1:]], prog="transfer.py"))
