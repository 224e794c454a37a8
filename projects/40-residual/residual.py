"""Re-train the cells of the residual study from the manifest.json beside this file and compare each cell's
numbers in residual.json bit for bit (exit 0 if identical). Made by `python -m initstudy.studies.residual.folder export`.

    python residual.py                                  # every cell: costs what the study cost
    python residual.py --cells "model=zero d100 s0 lr=0.05"   # chosen cells by label, comma-separated
"""
import sys

from initstudy.studies.residual import folder

if __name__ == "__main__":
    sys.exit(folder.reproduce_cli(sys.argv[1:]))
