"""The trainability phase diagram (Schoenholz et al. 2017)."""
