"""Re-run lab 01, the init ablation from the manifest.json beside this file and compare every series with
losses.json bit for bit (exit 0 if identical). Made by `python scripts/export_run.py`.

    python train.py                   # this machine: bit for bit
    python train.py --tolerance 1e-6  # another machine: relative tolerance, lists what differs
"""
import sys
from pathlib import Path

from initstudy.publish import reproduce

if __name__ == "__main__":
    sys.exit(reproduce.cli([str(Path(__file__).with_name("manifest.json")), *sys.argv[1:]], prog="train.py"))
