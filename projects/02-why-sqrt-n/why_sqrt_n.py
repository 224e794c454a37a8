"""Re-run lab 02, why 1/sqrt(n) from the manifest.json beside this file and compare every series with
results.json bit for bit (exit 0 if identical). Made by `python scripts/export_run.py`.

    python why_sqrt_n.py                   # this machine: bit for bit
    python why_sqrt_n.py --tolerance 1e-6  # another machine: relative tolerance, lists what differs
"""
import sys
from pathlib import Path

from initstudy.publish import reproduce

if __name__ == "__main__":
    sys.exit(reproduce.cli([str(Path(__file__).with_name("manifest.json")), *sys.argv[1:]], prog="why_sqrt_n.py"))
