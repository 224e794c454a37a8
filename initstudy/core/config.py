"""Parameter parsing and validation shared by every entry point.

Configs are frozen dataclasses of plain values. `parse(cls, raw)` turns command-line strings into
one, and every rule a value breaks is reported as a single line naming the parameter and what is
allowed (ConfigError), never a traceback.
"""
import dataclasses
import math
import typing


class ConfigError(ValueError):
    """Bad input: the message is one line, shown to the user as it is."""


def _int(name: str, raw) -> int:
    if isinstance(raw, bool):
        raise ConfigError(f"{name} must be an integer, got {raw!r}")
    if isinstance(raw, int):
        return raw
    try:
        return int(str(raw).strip())
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None


def _float(name: str, raw) -> float:
    if isinstance(raw, bool):
        raise ConfigError(f"{name} must be a number, got {raw!r}")
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number, got {raw!r}")
    return value


def positive(name: str, value):
    if value <= 0:
        raise ConfigError(f"{name} must be > 0, got {value!r}")


def at_least(name: str, value, lo):
    if value < lo:
        raise ConfigError(f"{name} must be >= {lo}, got {value!r}")


def one_of(name: str, value, allowed):
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")


def apply_preset(config, presets: dict):
    """A frozen config's __post_init__: the fields its preset (config.preset, a key of presets) sets, where
    they are left at their defaults (a value given on the command line wins)."""
    defaults = {f.name: f.default for f in dataclasses.fields(config)}
    for k, v in presets.get(config.preset, {}).items():
        if getattr(config, k) == defaults[k]:
            object.__setattr__(config, k, v)


def check_preset(preset: str, presets: dict):
    if preset and preset not in presets:
        raise ConfigError(f"preset must be one of {', '.join(presets)} (or empty); got {preset!r}")


def parse(cls, raw: dict):
    """Build the dataclass `cls` from strings (or values); unknown keys are an error."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    values = {}
    for key, value in raw.items():
        if key not in fields:
            raise ConfigError(f"unknown parameter {key!r}; allowed: {', '.join(fields)}")
        kind = hints[key]
        if kind is int:
            values[key] = _int(key, value)
        elif kind is float:
            values[key] = _float(key, value)
        else:
            values[key] = str(value).strip()
    config = cls(**values)
    config.validate()
    return config


def to_dict(config) -> dict:
    return dataclasses.asdict(config)
