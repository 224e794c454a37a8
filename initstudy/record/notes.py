"""A run's description (`mlflow.note.content`): one line on what happened, then how to read the run.

Each study writes its own (studies/<study>/record.py: note); what they share is here. Pure: results
in, markdown text out. MLflow 3.17 keeps a chart layout on the server only for the experiment's shared
views, not for a run's page, so a description points at the PNG that overlays measured and theory.
"""
import numpy as np


def g(x) -> str:
    """A number in a description: 3 significant digits, n/a where there is none."""
    return "n/a" if x is None or not np.isfinite(x) else f"{x:.3g}"
