"""initstudy: neural-network initialization studies, tracked in MLflow, repeatable bit for bit."""
__version__ = "0.1.0"
