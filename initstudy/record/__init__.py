"""What a run records: MLflow (tracking.py only), keys, manifest, provenance, notes, figures."""
