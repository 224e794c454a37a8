"""docs/img/residual-walk.png: the walk of a ReLU resnet (He weights, width 256, 50 blocks, seed 42) under each
branch scheme side by side, q_l / q_0 and the gradient against core/resnet_theory.py; and the BN MLP's gradient
growth against pi / (pi - 1) (width and batch 256, depth 30). Each walk is `initstudy walk --arch resnet
--branch B --activation relu --init kaiming --depth 50` (resp. --arch mlp --norm batchnorm), computed here
without MLflow.

    python scripts/residual_walk.py [OUT.png]
"""
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from initstudy.core import resnet  # noqa: E402
from initstudy.studies.walk.compute import WalkConfig, run_walk  # noqa: E402

COLORS = {"none": "tab:red", "sqrt_depth": "tab:blue", "zero": "tab:green", "fixup": "tab:purple"}


def main(out=Path(__file__).resolve().parent.parent / "docs" / "img" / "residual-walk.png"):
    fig, axes = plt.subplots(1, 3, figsize=(17, 4.6))
    for b in resnet.BRANCHES:
        c = WalkConfig(depth=50, width=256, activation="relu", arch="resnet", branch=b)
        c.validate()
        r = run_walk(c, "kaiming")
        x = np.arange(len(r.var))
        axes[0].semilogy(x, r.var / r.var[0], "-", color=COLORS[b], label=f"{b} measured")
        axes[0].semilogy(x, r.var_theory / r.var_theory[0], "--", color=COLORS[b], alpha=0.8, label=f"{b} theory")
        s = r.signal
        axes[1].semilogy(x, s.grad_var / s.grad_var[-1], "-", color=COLORS[b], label=f"{b} measured")
        axes[1].semilogy(x, s.grad_var_theory, "--", color=COLORS[b], alpha=0.8, label=f"{b} theory")
    c = WalkConfig(depth=30, width=256, batch=256, activation="relu", norm="batchnorm")
    c.validate()
    s = run_walk(c, "kaiming").signal
    x = np.arange(len(s.grad_var))
    summ = s.summary()
    axes[2].semilogy(x, s.grad_var, "-o", ms=3, color="tab:brown", label=f"measured: x{summ['grad_growth_per_layer']:.4f} per layer")
    axes[2].semilogy(x, s.grad_var_theory, "--", color="k", label=f"pi/(pi-1) = {summ['grad_growth_per_layer_theory']:.4f}")
    axes[0].set_title("forward: q_l / q_0 of the stream (ReLU, He, 50 blocks)", fontsize=10)
    axes[1].set_title("backward: Var(dL/dx_l) / Var(dL/dx_L)", fontsize=10)
    axes[2].set_title("plain ReLU MLP + BatchNorm: Var(dL/dz_l) (width, batch 256)", fontsize=10)
    for ax, xl in zip(axes, ("block (0 = x_0)", "block (0 = x_0)", "layer")):
        ax.set_xlabel(xl)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    print(f"wrote {out}")


if __name__ == "__main__":
    main(*sys.argv[1:2])
