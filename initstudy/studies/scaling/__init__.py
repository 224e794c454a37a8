"""Lab 02, why 1/sqrt(n)."""
