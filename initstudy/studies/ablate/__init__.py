"""Lab 01, the init ablation."""
