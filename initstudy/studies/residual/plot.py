"""residual.png: train and test accuracy against depth, a line per model (its best lr), a band over seeds."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

COLORS = {"mlp": "tab:gray", "mlp_bn": "tab:brown", "none": "tab:red", "sqrt_depth": "tab:blue", "zero": "tab:green",
          "fixup": "tab:purple"}


def accuracy_vs_depth(doc: dict, path):
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6), sharey=True)
    best = doc["best_lr"]
    for ax, key in zip(axes, ("train_acc", "test_acc")):
        for m, per in best.items():
            depths = sorted(int(d) for d in per)
            at = [[c[key] for c in doc["cells"] if c["model"] == m and c["depth"] == d and c["lr"] == per[str(d)]]
                  for d in depths]
            mean = [np.mean(a) for a in at]
            ax.plot(depths, mean, "-o", color=COLORS.get(m), label=f"{m}")
            ax.fill_between(depths, [min(a) for a in at], [max(a) for a in at], color=COLORS.get(m), alpha=0.2)
        ax.axhline(0.1, color="k", lw=0.8, ls=":", label="chance (10 classes)")
        ax.set_xscale("log")
        ax.set_xlabel("depth (residual blocks; MLP: 2 depth + 2 Linear layers)")
        ax.set_title(f"{'train' if key == 'train_acc' else 'test'} accuracy, each model's best lr; band: min-max over seeds",
                     fontsize=9)
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel("accuracy")
    axes[1].legend(fontsize=8)
    cfg = doc["config"]
    fig.suptitle(f"Residual networks on {cfg['data']}: width {cfg['width']}, {cfg['activation']}, {cfg['steps']} steps, "
                 f"batch {cfg['batch']}, lrs {cfg['lrs']}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
