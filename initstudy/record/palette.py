"""One colour per init scheme: the PNGs draw each init in it and `mlflow ui` draws its runs in it
(tag mlflow.runColor, honoured by MLflow 3.17's charts and runs table). Pure, no matplotlib import
unless a colour map is asked for.

Matplotlib's tab10 as hex (tab:red is #d62728, so the PNGs' pixels are what they were with names).
"""
INIT_COLORS = {"uniform": "#d62728", "xavier": "#1f77b4", "kaiming": "#2ca02c", "orthogonal": "#9467bd",
               "lsuv": "#ff7f0e", "xavier_avg": "#17becf", "xavier_uniform": "#bcbd22", "kaiming_uniform": "#e377c2",
               "lecun_normal": "#8c564b", "truncated_normal": "#7f7f7f", "standard_uniform": "#000000"}
PARENT = "#555555"  # a parent run: none of the inits' colours
PHASE_CMAP = "viridis"  # phase.png's colour of a cell's train accuracy (0..1)


def init_color(init: str) -> str | None:
    return INIT_COLORS.get(init)


def cmap_color(value: float, cmap: str = PHASE_CMAP) -> str:
    """The hex colour of `value` in [0, 1] on a matplotlib colour map (a phase cell as phase.png draws it)."""
    import matplotlib

    r, g, b, _ = matplotlib.colormaps[cmap](min(max(float(value), 0.0), 1.0))
    return "#%02x%02x%02x" % (round(r * 255), round(g * 255), round(b * 255))
