"""Progress bars (tqdm on stderr): drawn on a terminal, silent in a pipe; the recorded numbers unchanged."""
import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios

import numpy as np
import pytest

from conftest import REPO, initstudy
from initstudy.studies.ablate import compute as ablate
from initstudy.record import keys, provenance


def on_a_terminal(args, env, timeout=300) -> tuple[int, str]:
    """Run `python -m initstudy ARGS` with stderr on a pseudo-terminal; (exit code, what it drew)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))  # a 120-column terminal
    proc = subprocess.Popen([sys.executable, "-m", "initstudy", *map(str, args)], env=env, cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    out = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the other end closed
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    return proc.wait(timeout), out.decode(errors="replace")


def test_sweep_bar_on_a_terminal(store):
    code, drawn = on_a_terminal(["sweep", "--inits", "kaiming", "--depths", 3, "--seeds", "0,1,2", "--steps", 20],
                                store.env())
    assert code == 0, drawn[-3000:]
    assert re.search(r"sweep: 100%\|.*\| 3/3 runs \[\d\d:\d\d<00:00, 0 failed\]", drawn), drawn[-2000:]
    assert "\r" in drawn  # redrawn in place


def test_ablate_steps_bar_only_when_long_and_numbers_unchanged(store):
    args = ["ablate", "--init", "kaiming", "--depth", 3, "--width", 64, "--input_dim", 64, "--steps", 6000,
            "--eval_every", 1000, "--diag_every", 1000]
    code, drawn = on_a_terminal(args, store.env())
    assert code == 0, drawn[-3000:]
    assert re.search(r"ablate: 100%\|.*\| 6000/6000 steps", drawn), drawn[-2000:]
    (run,) = store.runs()
    got = [m.value for m in sorted(store.client.get_metric_history(run.info.run_id, keys.series("loss")), key=lambda m: m.step)]
    with provenance.pin_blas_threads():
        provenance.warm_up_blas()
        want = ablate.train(ablate.AblateConfig(depth=3, width=64, input_dim=64, steps=6000, eval_every=1000,
                                                diag_every=1000), "kaiming").losses
    np.testing.assert_array_equal(got, want)
    # in a pipe (a log, CI): no bar
    piped = initstudy(*args, env=store.env())
    assert piped.returncode == 0 and "steps" not in piped.stderr and "\r" not in piped.stderr, piped.stderr[-2000:]
