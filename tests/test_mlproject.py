"""MLproject and the code hold one truth: every entry point's parameters, defaults and documented choices
agree with the CLI (initstudy.run.cli's parser), the config dataclasses and the registries (inits,
activations, datasets). MLproject stays hand-written (its comments are for users); this test fails when
the two drift apart."""
import argparse
import dataclasses
import re
import shlex

import pytest
import yaml  # comes with MLflow

from conftest import REPO
from initstudy.core import data, inits, nn
from initstudy.core.config import parse
from initstudy.run import cli
from initstudy.studies import load

pytestmark = pytest.mark.fast

TEXT = (REPO / "MLproject").read_text()
ENTRIES = yaml.safe_load(TEXT)["entry_points"]
SHORTCUTS = {"main"}  # `mlflow run .` alone: walk with init only, the other parameters at their defaults
# a parameter whose comment lists its choices -> the registry the list must equal
CHOICES = {"init": inits.INITS, "activation": nn.ACTIVATIONS, "network": nn.ACTIVATIONS, "data": data.DATASETS}


def command(entry: str) -> tuple[str, dict]:
    """(initstudy's command, {flag: MLproject parameter}) of `python -m initstudy CMD --flag {param} ...`."""
    words = shlex.split(ENTRIES[entry]["command"])
    assert words[:3] == ["python", "-m", "initstudy"], words
    # `--flag {param}`, or `--flag={param}` (a value that may start with "-", e.g. log2 learning rates)
    words = [w for word in words[4:] for w in (word.split("=", 1) if word.startswith("--") else [word])]
    pairs = dict(zip(words[0::2], words[1::2]))
    assert len(words) % 2 == 0 and all(re.fullmatch(r"\{\w+\}", v) for v in pairs.values()), words
    return shlex.split(ENTRIES[entry]["command"])[3], {flag: v[1:-1] for flag, v in pairs.items()}


def subparser(cmd: str) -> argparse.ArgumentParser:
    parser = cli.build_parser([cmd])
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return sub.choices[cmd]


def options(cmd: str) -> dict:
    """{dest: action} of the command's options (--help and --tracking-uri aside: not the study's)."""
    return {a.dest: a for a in subparser(cmd)._actions if a.dest not in ("help", "tracking_uri")}


def config_class(cmd: str):
    """The dataclass the command parses its options into: in the job module, the one whose fields are
    exactly the options left unset by argparse (default None: `default` is the config's)."""
    module = load(cli.commands()[cmd])
    unset = {d for d, a in options(cmd).items() if a.default is None}
    found = [c for c in vars(module).values() if dataclasses.is_dataclass(c) and isinstance(c, type)
             and {f.name for f in dataclasses.fields(c)} == unset]
    return found[0] if unset else None


def comment(entry: str, param: str) -> str:
    """The comment after the parameter's line in this entry (yaml drops comments: read from the text)."""
    block = TEXT.split(f"\n  {entry}:\n", 1)[1]
    line = re.search(rf"^\s+{param}: \{{.*?\}}(.*)$", block, re.M).group(1)
    return line.split("#", 1)[1] if "#" in line else ""


def listed(text: str) -> list:
    """The names a comment lists: parentheses dropped, after its last colon, comma-separated words."""
    text = re.sub(r"\([^)]*\)", "", text).rsplit(":", 1)[-1]
    return [w.strip() for w in text.split(",") if re.fullmatch(r"[a-z][a-z0-9_]*", w.strip())]


@pytest.mark.parametrize("entry", list(ENTRIES))
def test_command_passes_each_parameter_to_its_own_option(entry):
    cmd, flags = command(entry)
    params = ENTRIES[entry].get("parameters", {})
    assert sorted(flags.values()) == sorted(params), "every parameter passed exactly once"
    assert all(flag == f"--{p}" for flag, p in flags.items()), flags
    known = subparser(cmd)._option_string_actions
    assert [f for f in flags if f not in known] == [], f"not options of `initstudy {cmd}`"


@pytest.mark.parametrize("entry", sorted(set(ENTRIES) - SHORTCUTS))
def test_every_option_of_the_command_is_a_parameter(entry):
    cmd, flags = command(entry)
    passed = {subparser(cmd)._option_string_actions[f].dest for f in flags}
    assert sorted(set(options(cmd)) - passed) == [], f"`initstudy {cmd}` takes them, MLproject's {entry} does not"


@pytest.mark.parametrize("entry", list(ENTRIES))
def test_defaults_are_the_codes(entry):
    cmd, flags = command(entry)
    params = ENTRIES[entry].get("parameters", {})
    opts, sub = options(cmd), subparser(cmd)
    dest = {sub._option_string_actions[f].dest: p for f, p in flags.items()}
    for d, p in dest.items():  # the command's own options: argparse's default
        if opts[d].default is not None:
            assert str(params[p]["default"]) == str(opts[d].default), (entry, p)
    cls = config_class(cmd)
    if cls is None:
        return
    given = {d: str(params[p]["default"]) for d, p in dest.items() if opts[d].default is None}
    config = parse(cls, given)  # what `mlflow run . -e ENTRY` runs with no -P
    for d in given:
        assert getattr(config, d) == getattr(cls(), d), (entry, d, given[d])


def test_config_classes_are_found():  # the defaults test would pass vacuously without them
    found = {e: getattr(config_class(command(e)[0]), "__name__", None) for e in ENTRIES}
    assert found["walk"] == "WalkConfig" and found["ablate"] == "AblateConfig"
    assert found["diagnose"] == "DiagnoseConfig" and found["sweep"] is None


@pytest.mark.parametrize("entry", list(ENTRIES))
def test_documented_choices_are_the_registries(entry):
    checked = 0
    for param in ENTRIES[entry].get("parameters", {}):
        names = listed(comment(entry, param))
        if param in CHOICES and len(names) > 1:  # a comment that lists the choices lists them all
            assert sorted(names) == sorted(CHOICES[param]), (entry, param)
            checked += 1
    assert checked or entry not in ("walk", "ablate", "main"), "their init and activation comments list the choices"


def test_listed():
    assert listed(" all (the lab's uniform, xavier), or one of: uniform, xavier (docs/inits.md)") == ["uniform", "xavier"]
    assert listed(" the activation: tanh (the notebook's), linear, relu") == ["tanh", "linear", "relu"]
