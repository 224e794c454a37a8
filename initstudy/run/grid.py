"""A sweep's grid: any config field (and init) as an axis, fixed overrides, every point validated.

    grid = "init=xavier,kaiming;depth=6,12,24;gain=0.5,1,2;seed=0,1,2"   (axes: name=v1,v2,...)
    set  = "steps=200;activation=tanh"                                  (fixed: name=value)

The old shorthands (inits, depths, seeds, steps) are the axes init, depth, seed and the fixed steps.
Every point is parsed with its study's own config validation before anything starts, so a bad axis,
value or combination gets one line (ConfigError) and no run is opened.
"""
import itertools
import json
import math
from dataclasses import dataclass, field

from initstudy.core import budget, inits
from initstudy.core.config import ConfigError, one_of, parse, to_dict
from initstudy import studies

DEFAULT_AXES = {"init": "uniform,xavier,kaiming", "depth": "6,12,24", "seed": "0,1,2"}
SHORT = {"depth": "d", "seed": "s"}  # in child names: "kaiming d12 s1"


@dataclass
class Point:
    label: str  # the child's run name: the values of the axes that vary
    init: str
    config: object
    values: dict  # axis -> parsed value


@dataclass
class Grid:
    study: str
    axes: dict  # name -> [parsed values], in the user's order
    fixed: dict  # name -> parsed value
    points: list = field(default_factory=list)

    def spec(self) -> str:
        """Canonical JSON of what the sweep computes (resume compares it)."""
        return json.dumps({"study": self.study, "axes": self.axes, "fixed": self.fixed}, sort_keys=True)

    def text(self) -> str:
        """The grid in the command's own syntax, parsed values (e.g. for a title)."""
        axes = ";".join(f"{k}={','.join(map(_fmt, v))}" for k, v in self.axes.items())
        return axes + (f" | {';'.join(f'{k}={_fmt(v)}' for k, v in self.fixed.items())}" if self.fixed else "")


def _fmt(v) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def pairs(name: str, raw: str) -> list[tuple[str, str]]:
    """"a=1,2;b=3" -> [("a", "1,2"), ("b", "3")], each key once."""
    out, seen = [], set()
    for part in (p.strip() for p in str(raw or "").split(";")):
        if not part:
            continue
        key, eq, value = (s.strip() for s in part.partition("="))
        if not eq or not key or not value:
            raise ConfigError(f"{name} must be 'name=value{',value' if name == 'grid' else ''};...'; got {part!r}")
        if key in seen:
            raise ConfigError(f"{name} names {key!r} twice")
        seen.add(key)
        out.append((key, value))
    return out


def build(study: str, grid: str = "", fixed: str = "", inits_: str = "", depths: str = "", seeds: str = "",
          steps: str = "") -> Grid:
    """The validated grid (every point parsed), or ConfigError with one line."""
    study = str(study).strip()
    one_of("study", study, studies.sweepable())
    cls = studies.STUDIES[study].sweep_part("config")
    fields = ("init", *to_dict(cls()))
    raw_axes = dict(pairs("grid", grid))
    raw_fixed = dict(pairs("set", fixed))
    for key, value in (("init", inits_), ("depth", depths), ("seed", seeds)):
        if str(value or "").strip():
            if key in raw_axes:
                raise ConfigError(f"{key} is given twice: in grid and as {key}s={value!r}; use one")
            raw_axes[key] = value
    if str(steps or "").strip():
        if "steps" in raw_axes or "steps" in raw_fixed:
            raise ConfigError(f"steps is given twice: as steps={steps!r} and in grid/set; use one")
        raw_fixed["steps"] = steps
    for key in (*raw_axes, *raw_fixed):
        if key not in fields:
            raise ConfigError(f"{key!r} is not a parameter of study={study}; allowed: {', '.join(fields)}")
    both = set(raw_axes) & set(raw_fixed)
    if both:
        raise ConfigError(f"{', '.join(sorted(both))} is both an axis (grid) and fixed (set); use one")
    if "init" in raw_fixed:
        raw_axes["init"] = raw_fixed.pop("init")
    for key, value in DEFAULT_AXES.items():
        if key not in raw_fixed:
            raw_axes.setdefault(key, value)
    raw_axes = {"init": raw_axes.pop("init"), **raw_axes}  # init first: it leads a child's name
    base = parse(cls, raw_fixed)  # a bad fixed value is reported as itself, not as a grid point's
    fixed_values = {k: getattr(base, k) for k in raw_fixed}
    axes = {}
    for key, value in raw_axes.items():
        items = [x.strip() for x in str(value).split(",") if x.strip()]
        if not items:
            raise ConfigError(f"axis {key} lists no value; got {value!r}")
        if key == "init":
            for n in items:
                one_of("init", n, tuple(inits.INITS))
            parsed = items
        else:
            parsed = [getattr(parse(cls, {**raw_fixed, key: x}), key) for x in items]
        axes[key] = list(dict.fromkeys(parsed))
    out = Grid(study, axes, fixed_values)
    budget.check_runs(math.prod(len(v) for v in axes.values()))  # the count first: nothing built for a huge grid
    varying = [k for k, v in axes.items() if len(v) > 1]
    for combo in itertools.product(*axes.values()):
        values = dict(zip(axes, combo))
        label = " ".join(_label_part(k, values[k]) for k in varying) or values["init"]
        try:
            config = parse(cls, {**fixed_values, **{k: v for k, v in values.items() if k != "init"}})
            budget.check(config)
            if hasattr(config, "check_init"):  # what the init asks of the rest (ablate: lsuv needs norm=none)
                config.check_init(values["init"])
        except ConfigError as e:
            raise ConfigError(f"grid point {label!r}: {e}") from None
        out.points.append(Point(label, values["init"], config, values))
    return out


def _label_part(key, value) -> str:
    if key == "init":
        return str(value)
    return f"{SHORT[key]}{_fmt(value)}" if key in SHORT else f"{key}={_fmt(value)}"

