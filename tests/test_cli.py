"""Bad input through the real command line: one line, non-zero exit, no traceback, no run."""
import pytest

from conftest import assert_refused, initstudy


@pytest.mark.parametrize("args,words", [
    (["walk", "--init", "he"], ["init", "uniform, xavier, kaiming"]),
    (["walk", "--activation", "gelu"], ["activation", "linear, relu, tanh"]),
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
