"""Re-train the cells of the residual study from the manifest.json beside this file and compare each
cell's numbers in residual.json bit for bit (exit 0 if identical). Made by `python scripts/export_run.py`.

    python residual.py                                       # every cell: costs what the study cost
    python residual.py --cells "model=fixup d10 s0 lr=0.01"  # chosen cells by label, comma-separated
    python residual.py --tolerance 1e-6                      # another machine: relative tolerance
"""
import sys
from pathlib import Path

from initstudy.publish import reproduce

if __name__ == "__main__":
    sys.exit(reproduce.cli([str(Path(__file__).with_name("manifest.json")), *sys.argv[1:]], prog="residual.py"))
