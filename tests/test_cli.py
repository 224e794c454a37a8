"""Bad input through the real command line: one line, non-zero exit, no traceback, no run."""
import json
import subprocess
import sys

import pytest

from conftest import assert_refused, initstudy


@pytest.mark.parametrize("args,words", [
    (["walk", "--init", "he"], ["init", "uniform, xavier, kaiming"]),
    (["walk", "--activation", "swish"], ["activation", "linear, relu, tanh, selu, gelu, sigmoid, silu"]),
    (["walk", "--dtype", "int8"], ["dtype", "float64, float32, float16"]),
    (["walk", "--depth", "0"], ["depth", "> 0"]),
    (["walk", "--width", "-3"], ["width"]),
    (["walk", "--batch", "2.5"], ["batch", "integer"]),
    (["walk", "--depth", "ten"], ["depth", "integer"]),
    (["walk", "--input_variance", "0"], ["input_variance"]),
    (["walk", "--input_variance", "nan"], ["input_variance", "finite"]),
    (["walk", "--input_variance", "inf"], ["input_variance", "finite"]),
    (["walk", "--bogus", "1"], ["unrecognized"]),
])
def test_walk_refusals(args, words, store):
    proc = initstudy(*args, env=store.env())
    assert_refused(proc, *words)
    assert proc.returncode == 2
    assert store.runs() == []


@pytest.mark.parametrize("argv", [["walk", "--init", "he"], ["ablate", "--init", "he"], ["diagnose", "--init", "he"],
                                  ["sweep", "--inits", "he"]])
def test_refusal_imports_neither_mlflow_nor_the_other_commands(argv):
    """Bad input is refused before MLflow (seconds) is imported, and a command loads only its own
    module; ablate's parse loads no matplotlib either (0.4 s: its workers start before it)."""
    code = ("import json, sys\nfrom initstudy.run import cli\n"
            f"code = cli.main({argv!r})\n"
            "print(json.dumps([code, [m for m in ('mlflow', 'matplotlib') if m in sys.modules],"
            " sorted(m for m in sys.modules if m.endswith('.job') or m == 'initstudy.run.sweep')]))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    code, heavy, jobs = json.loads(proc.stdout)
    assert code == 2 and "error" in proc.stderr, proc.stderr
    assert "mlflow" not in heavy
    assert set(jobs) <= {"initstudy.run.sweep" if argv[0] == "sweep" else f"initstudy.studies.{argv[0]}.job", "initstudy.studies.ablate.job" if argv[0] == "sweep" else ""}, jobs
    if argv[0] == "ablate":
        assert heavy == []
