"""What lab 02 records beside its numbers: its experiment's description."""

ASKS = (
    "**Lab 02, why 1/sqrt(n).** Why is a weight scaled by 1/sqrt(fan-in)? One run per command holds the "
    "answer measured: `var_scale_1`, `var_scale_1_over_n`, `var_scale_1_over_sqrt_n` are Var(x.w) of one "
    "dot product with step = log2 of the width, each beside its `_theory` n k^2; `depth_var_*` the "
    "variance after L layers for sigma = c/sqrt(n) (step = L) against c^2L and the ReLU/tanh q-maps; "
    "`log_ratio_sd_n*` the finite-width spread of log(var_L / q_L) against sqrt(kappa L / n). "
    "scaling.png draws all three on log axes, theory dashed.")
