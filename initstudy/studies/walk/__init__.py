"""Lab 00, the variance walk."""
