"""Re-train the cells of the residual study from the manifest.json beside this file and compare each cell's
numbers in residual.json bit for bit (exit 0 if identical). Made by `python -m initstudy.studies.residual.lab export`.

    python residual.py                                  # every cell: costs what the study cost
    python residual.py --cells "zero d100 s0 lr0.05"    # chosen cells by label, comma-separated
"""
import sys

from initstudy.studies.residual import lab

if __name__ == "__main__":
    sys.exit(lab.reproduce_cli(sys.argv[1:]))
