"""What lab 03 records beside its numbers: its experiment's description and a run's."""
from initstudy.record import keys, labs
from initstudy.record.notes import g as _g

ASKS = (
    "**Lab 03, makemore: activations, gradients, BatchNorm.** A character-level MLP on a names corpus, "
    "as in Karpathy's makemore part 3: is the initial loss the uniform guess's, do tanh units saturate, "
    "do gradients and updates stay balanced across layers, and what does BatchNorm change? One run per "
    f"command. `{keys.SERIES['loss']}` is the loss every step; `<stat>/Lnn` the per-layer statistics every "
    "`diag_every` steps (L00 is the embedding); `train_loss`, `dev_loss` and `initial_loss` against "
    "`expected_initial_loss` are the summary. The PNGs show the histograms, the saturation map and the "
    "update:data ratios.")
VIEW = labs.View(  # the shared chart view: headline curves first, in log y
    "Lab 03, makemore: is a character-level MLP's first loss the uniform guess's, and do its layers saturate "
    "or stay balanced?", (((keys.SERIES["loss"],), True),), labs.PER_LAYER)


def note(r, config) -> str:
    if r.steps_to_nan is not None:
        head = f"{r.init}: diverged at step {r.steps_to_nan}"
    else:
        head = (f"{r.init} x gain {config.gain:.3g}, norm {config.norm}: initial loss {_g(r.initial_loss)} (uniform "
                f"guess {_g(r.expected_initial_loss)}) → train {_g(r.train_loss)}, dev {_g(r.dev_loss)} after "
                f"{config.steps} steps")
    how = (f"Read: `{keys.SERIES['loss']}` first, then the per-layer statistics (`<stat>/Lnn`, L00 the embedding); "
           "activations.png, gradients.png, saturation_map.png and update_ratio.png are the notebook's plots.")
    return head + "\n\n" + how
