"""Lab 03, makemore: activations, gradients, BatchNorm."""
