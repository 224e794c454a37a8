"""Every MLflow metric key a run logs, in one place (rename here and every job follows).

`mlflow ui` (3.17) groups a run's charts into sections by the key's `/` prefix (everything before
the last `/`), orders the sections by name in code-point order, digits < uppercase < lowercase, and
puts un-prefixed keys last ("Model metrics"); charts within a section are ordered by key the same
way (server/js: getBaseChartAndSectionConfigs). So:
- the lab's headline curves go in one Capitalized section: it comes first;
- per-layer detail goes in lowercase sections (`<stat>/Lnn`), after it;
- one-value summaries are un-prefixed, last, and the same key on every run of a lab.
A new walk series (gradient variance, correlation) goes in a lowercase section of its own, e.g.
`gradient/grad_var`, `gradient/grad_var_theory`, `correlation/corr`, `correlation/corr_theory`, and a
new summary (q_star, chi1, xi_c) un-prefixed.
"""

FINDING = "Finding"  # a run's headline numbers (a parent's per init, a cell's train_acc): first, before Training
TRAINING = "Training"  # ablate, diagnose: per-step curves
VARIANCE = "Variance"  # walk: per-layer variance, step = layer index

SERIES = {
    # ablate, diagnose (step = training step)
    "loss": f"{TRAINING}/loss",
    "val_loss": f"{TRAINING}/val_loss",
    "val_acc": f"{TRAINING}/val_acc",
    # walk (step = layer index; layer 0 is the input)
    "var": f"{VARIANCE}/var",
    "var_pred": f"{VARIANCE}/var_pred",
    "var_theory": f"{VARIANCE}/var_theory",
    "saturated": "overflow/saturated",  # 0/1 per layer: after the variance curves, not before var
    "lsuv_scale": "lsuv/scale",  # init lsuv (walk, ablate): the factor on each layer's orthogonal W, step = layer
    # walk's signal propagation (step = layer index): lowercase sections, after Variance
    "grad_var": "gradient/grad_var",
    "grad_var_theory": "gradient/grad_var_theory",
    "corr": "correlation/corr",
    "corr_theory": "correlation/corr_theory",
    "mean": "moments/mean",  # the mean of z_l beside Variance/var (SELU's fixed point: mean 0, var 1)
}

# the depth profile of a per-layer statistic (step = layer index), at the first and the last diagnostics row
PROFILES = ("init", "end")


def series(name: str) -> str:
    return SERIES[name]


def finding(name: str) -> str:
    """A headline number in the first section: `Finding/<name>` (additions: the un-prefixed summary keys stay)."""
    return f"{FINDING}/{name}"


def layer(stat: str, layer_index: int) -> str:
    """A per-layer statistic over training: `<stat>/Lnn` (L01 the first Linear block; diagnose's L00 the embedding)."""
    return f"{stat}/L{layer_index:02d}"


def profile(stat: str, when: str) -> str:
    """A statistic's depth profile at `when` (init | end), step = layer index; in the stat's section."""
    assert when in PROFILES, when
    return f"{stat}/by_layer_{when}"
