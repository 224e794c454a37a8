"""Sizes the machine cannot hold (issue 24): refused in one line before anything starts, with the number
and the limit, for a run, a sweep grid and a tampered manifest given to reproduce; each bound a user can
raise. Before: MemoryError, a traceback and a FAILED run."""
import json
import os
import shutil

import pytest

from conftest import REPO, assert_refused, initstudy

HUGE = [("walk", ["--width", "3000000"], "GiB of memory"),
        ("ablate", ["--steps", "1000000000000", "--width", "2000000", "--depth", "1000000"], "steps per run"),
        ("ablate", ["--width", "2000000"], "GiB of memory"),
        ("diagnose", ["--block_size", "100000"], "GiB of memory")]


@pytest.mark.parametrize("entry,args,words", HUGE)
def test_a_size_the_machine_cannot_hold_is_one_line_and_no_run(store, entry, args, words):
    proc = initstudy(entry, *args, env=store.env())
    assert_refused(proc, words)
    assert proc.returncode == 2 and store.runs() == []


def test_a_huge_grid_is_refused_by_its_count_and_the_bound_can_be_raised(store):
    grid = "seed=" + ",".join(map(str, range(300))) + ";depth=" + ",".join(map(str, range(1, 201)))
    assert_refused(initstudy("sweep", "--grid", grid, env=store.env()), "180,000 points", "INITSTUDY_MAX_RUNS")
    small = initstudy("ablate", "--steps", "200000000", env=store.env())
    assert_refused(small, "steps=200,000,000", "100,000,000", "INITSTUDY_MAX_STEPS")
    raised = initstudy("ablate", "--steps", "200000000", env=store.env(INITSTUDY_MAX_STEPS="1e9",
                                                                         INITSTUDY_MEMORY_FRACTION="1e-9"))
    assert_refused(raised, "GiB of memory")  # past the steps bound now, and held to the (tiny) memory one
    assert store.runs() == []


@pytest.mark.parametrize("key,value,words", [("steps", 10**9, "steps per run"), ("hidden_dim", 10**6, "GiB of memory")])
def test_reproduce_refuses_a_tampered_size(tmp_path, key, value, words):
    folder = shutil.copytree(REPO / "projects" / "10-init-matters", tmp_path / "lab")
    mf = json.loads((folder / "manifest.json").read_text())
    mf["config"][key] = value
    (folder / "manifest.json").write_text(json.dumps(mf))
    proc = initstudy("reproduce", folder / "manifest.json", env={**os.environ})
    assert_refused(proc, str(folder / "manifest.json"), words)
    assert proc.returncode == 2
