"""The residual study's README numbers: the measured table (each model's best lr), the claims, and the
mean-field growth q_L / q_0 at init for each scheme beside them (prose: readme.md.j2 beside this file)."""
from initstudy.core import resnet_theory as rt
from initstudy.studies.residual import compute as residual

LABELS = {"mlp": "plain MLP", "mlp_bn": "plain MLP + BatchNorm", "none": "resnet, branch none (α = 1)",
          "sqrt_depth": "resnet, α = 1/√L", "zero": "resnet, zero (SkipInit)", "fixup": "resnet, Fixup"}


def numbers(doc: dict, mf: dict) -> dict:
    c, cl, g = doc["config"], doc["claims"], doc["grid"]
    depths = g["depth"]
    table = [{"model": m, "label": LABELS[m], "cells": [cl["table"][m].get(str(d)) for d in depths]}
             for m in g["model"] if m in cl["table"]]
    deep, shallow = str(cl["deepest"]), str(cl["shallowest"])
    versus = [{"model": m, "label": LABELS[m], "deep": t[deep]["test_acc"], "shallow": t[shallow]["test_acc"],
               "drop": t[shallow]["test_acc"] - t[deep]["test_acc"]}
              for m, t in cl["table"].items() if deep in t and shallow in t]
    resnets = [m for m in g["model"] if not m.startswith("mlp")]
    growth = [{"model": m, "label": LABELS[m], **{f"d{d}": rt.growth_closed_form("relu", m, d, 2.0) for d in depths}}
              for m in resnets] if c["activation"] == "relu" and c["init"] == "kaiming" else []
    t = doc["timing"]
    return {"config": c, "example": doc["cells"][0]["label"], "depths": depths, "seeds": len(g["seed"]), "lrs": g["lr"], "cells": len(doc["cells"]),
            "table": table, "train_at_deepest": [LABELS[m] for m in cl["train_at_deepest"]],
            "untrained_at_deepest": [LABELS[m] for m in cl["table"] if m != "mlp_bn" and m not in cl["train_at_deepest"]],
            "deepest": cl["deepest"], "shallowest": cl["shallowest"], "versus": versus,
            "fail_from": [{"label": LABELS[m], "depth": d} for m, d in cl["fail_from_depth"].items() if d is not None],
            "growth": growth, "trained_acc": residual.TRAINED_ACC, "timing": t,
            "edge": [LABELS[m] for m in cl["train_at_deepest"]
                     if all(v["lr"] == max(g["lr"]) for v in cl["table"][m].values())],
            "diverged": sum(x["diverged"] for x in doc["cells"])}
