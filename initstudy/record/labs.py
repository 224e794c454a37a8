"""The labs' MLflow experiments: one entry per study, its name and the description `mlflow ui` shows.

A later study adds one entry to LABS. The name is also the manifest's "experiment" and the runs'
initstudy.experiment tag. A sweep records into an experiment of its own, `<lab>-sweeps`: a sweep's
27+ children would bury the lab's handful of runs in its runs table and charts, and the lab's
experiment stays what the committed projects/ folders were exported from.
"""
from dataclasses import dataclass

from initstudy.record import keys as K

HOW_TO_READ = ("Open a run, then *Model metrics*: the capitalized section comes first and holds the lab's "
               "headline curves; lowercase sections hold the per-layer detail; one-value summaries "
               "(un-prefixed keys) come last. The run's description says what happened, and its artifacts hold "
               "the lab's plot, results document and manifest.json (what repeating it bit for bit needs). If the "
               "experiment opens on an empty GenAI overview, switch the *Model training* toggle at the top of the "
               "page (or add `?workflowType=machine_learning` to the address).")


@dataclass(frozen=True)
class Lab:
    experiment: str  # the MLflow experiment, the manifest's "experiment", the initstudy.experiment tag
    entry: str  # `mlflow run . -e <entry>`
    asks: str  # what the lab asks and what its runs hold (markdown)

    @property
    def description(self) -> str:
        """The experiment's description (tag mlflow.note.content)."""
        return f"{self.asks}\n\n{HOW_TO_READ}"


WALK, ABLATE, DIAGNOSE, SCALING = "10-variance-walk", "10-init-matters", "03-makemore", "02-why-sqrt-n"
TRAINABILITY = "20-trainability"

LABS = {
    WALK: Lab(WALK, "walk", (
        "**Lab 00, the variance walk.** Does the activation variance stay put, explode or vanish as a batch "
        "goes forward through `depth` random layers under each init (uniform, Xavier, Kaiming), and does the "
        "mean-field q-map predict it? Each command is a parent run (`walk`) with one child per init; a child's "
        f"`{K.SERIES['var']}` is the measured per-layer variance with step = layer index, `{K.SERIES['var_theory']}` the "
        f"closed form from the input alone, `{K.SERIES['var_pred']}` the one-step prediction from the previous "
        "layer; `final_layer_variance` is the last layer's. variance.png overlays measured and theory on a "
        "log scale.")),
    ABLATE: Lab(ABLATE, "ablate", (
        "**Lab 01, init matters.** A 12-layer ReLU MLP trained on the same synthetic data under each init: "
        "which inits train, which diverge (NaN) or flatline, and why, seen layer by layer. Each command is a "
        f"parent run (`ablate`) with one child per init (or one run with `-P init=...`). `{K.SERIES['loss']}` is "
        f"the loss every step, `{K.SERIES['val_loss']}` and `{K.SERIES['val_acc']}` every `eval_every` steps; "
        f"`<stat>/Lnn` are the makemore diagnostics per layer over training and `{K.profile('<stat>', 'init')}|end` "
        "their depth profile (step = layer index). A diverged run's series stop at the last finite point; "
        "its `steps_to_nan` and outcome tag say where, and it has no `final_loss`.")),
    DIAGNOSE: Lab(DIAGNOSE, "diagnose", (
        "**Lab 03, makemore: activations, gradients, BatchNorm.** A character-level MLP on a names corpus, "
        "as in Karpathy's makemore part 3: is the initial loss the uniform guess's, do tanh units saturate, "
        "do gradients and updates stay balanced across layers, and what does BatchNorm change? One run per "
        f"command. `{K.SERIES['loss']}` is the loss every step; `<stat>/Lnn` the per-layer statistics every "
        "`diag_every` steps (L00 is the embedding); `train_loss`, `dev_loss` and `initial_loss` against "
        "`expected_initial_loss` are the summary. The PNGs show the histograms, the saturation map and the "
        "update:data ratios.")),
    SCALING: Lab(SCALING, "scaling", (
        "**Lab 02, why 1/sqrt(n).** Why is a weight scaled by 1/sqrt(fan-in)? One run per command holds the "
        "answer measured: `var_scale_1`, `var_scale_1_over_n`, `var_scale_1_over_sqrt_n` are Var(x.w) of one "
        "dot product with step = log2 of the width, each beside its `_theory` n k^2; `depth_var_*` the "
        "variance after L layers for sigma = c/sqrt(n) (step = L) against c^2L and the ReLU/tanh q-maps; "
        "`log_ratio_sd_n*` the finite-width spread of log(var_L / q_L) against sqrt(kappa L / n). "
        "scaling.png draws all three on log axes, theory dashed.")),
    TRAINABILITY: Lab(TRAINABILITY, "phase", (
        "**The trainability phase diagram** (Schoenholz et al. 2017). Which (sigma_w^2, depth) of a random tanh "
        "network trains on MNIST-1D, against mean-field theory's bound depth <= 6 xi_c? Each command is a parent "
        "run (`phase`) with one child per cell (sigma_w^2, depth, seed). A child holds `Training/loss` every step and "
        "its summary: `train_acc` (whole training set), `test_acc`, `final_train_loss`, `steps_to_nan` where it "
        "diverged, and the theory `chi1`, `xi_c`, `six_xi_c`. The parent holds phase.png (train accuracy over the "
        "grid, the critical sigma_w^2 and the xi_c, 6 xi_c curves), phase.json (the grid), `critical_sigma_w2`, "
        "`agreement` (fraction of cells where trained, train_acc >= 0.3, equals depth <= 6 xi_c) and "
        "`deepest_trained_depth` with step = the sigma_w^2 index in the grid.")),
}

for _lab in list(LABS.values()):  # every lab that sweeps has a sweep experiment beside it
    if _lab.entry in ("walk", "ablate", "phase"):
        LABS[f"{_lab.experiment}-sweeps"] = Lab(f"{_lab.experiment}-sweeps", "sweep", (
            f"**Sweeps of {_lab.experiment}.** A grid of `{_lab.entry}` runs, inits x depths x seeds "
            f"(`mlflow run . -e sweep -P study={_lab.entry}`). The parent run holds the sweep's summary "
            "(sweep.png, sweep.json, the per-init medians against depth); each child is exactly the run that "
            f"`{_lab.entry}` with that config records alone, with the same metric keys as in {_lab.experiment}."))


def sweep_experiment(experiment: str) -> str:
    """Where a sweep of the lab `experiment` records."""
    return f"{experiment}-sweeps"
