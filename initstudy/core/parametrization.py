"""How init and learning rate scale with width: SP, NTK and muP as per-layer numbers (pure).

Yang et al. 2022, "Tensor Programs V" (arXiv 2203.03466), Table 3, with m = width / base_width (the
width multiplier; m = 1 at base_width, where muP equals SP):

    |          | input weights, all biases | hidden weights       | output weights                   |
    | init Var | 1/fan_in                  | 1/fan_in             | muP 1/(fan_in m), or zero        |
    |          |                           |                      |                   (SP 1/fan_in)  |
    | SGD lr   | muP eta m   (SP eta)      | eta                  | muP eta/m         (SP eta)       |
    | Adam lr  | eta                       | muP eta/m (SP eta)   | muP eta/m         (SP eta)       |

NTK: every layer's output multiplied by 1/sqrt(fan_in), the weights stored at unit scale (the init's
draw times sqrt(fan_in): N(0, 1) for Var 1/fan_in); lr eta everywhere (Jacot et al. 2018, eq. 1).

The init's own constant stays (kaiming's 2/fan_in, xavier's 1/fan_in): a parametrization says how a
layer scales with width, so it multiplies the init's variance by the table's width factor (as mup's
set_base_shapes rescales a model's own init). Biases start at zero, as our SP's do. mup_readout picks
muP's output init: "scaled" (Var 1/(fan_in m)) or "zero" (the table's "or zero"; TP V's own experiments
and mup's MuReadout(readout_zero_init=True)); it is muP's choice only, SP and NTK keep theirs.
"""
import math
from dataclasses import asdict, dataclass

from initstudy.core.config import ConfigError, one_of

PARAMS = ("sp", "ntk", "mup")
OPTIMIZERS = ("sgd", "adam")
KINDS = ("input", "hidden", "output")
MUP_READOUTS = ("scaled", "zero")  # muP's output init: Var 1/(fan_in m), or zero


@dataclass(frozen=True)
class Layer:
    """One Linear layer's numbers under a parametrization, all relative to SP at the same width."""
    kind: str  # input | hidden | output
    init_std: float  # multiplies the init's draw (std, not variance)
    forward_mult: float  # multiplies x @ W before the bias (NTK: 1/sqrt(fan_in)); 1 = none
    lr_weight: float  # multiplies lr for W
    lr_bias: float  # multiplies lr for b


def kinds(depth: int) -> list[str]:
    """input, hidden..., output for `depth` Linear layers (depth >= 2: there is a hidden width)."""
    return ["input"] + ["hidden"] * (depth - 2) + ["output"]


def width_mult(width: int, base_width: int) -> float:
    return width / base_width


def check(param: str, optimizer: str, depth: int, width: int, base_width: int, mup_readout: str = "scaled"):
    """One line (ConfigError) for a combination that has no meaning."""
    one_of("param", param, PARAMS)
    one_of("optimizer", optimizer, OPTIMIZERS)
    one_of("mup_readout", mup_readout, MUP_READOUTS)
    if mup_readout == "zero" and param != "mup":
        raise ConfigError(f"mup_readout=zero is muP's output init (TP V Table 3: 1/(fan_in m), or zero); "
                          f"param={param} keeps its own (Var 1/fan_in)")
    if base_width < 1:
        raise ConfigError(f"base_width must be >= 1, got {base_width!r}")
    if param == "mup" and depth < 2:
        raise ConfigError(f"param=mup needs a hidden layer (depth >= 2 Linear layers): with depth={depth} the "
                          "net has no width to scale")
    if param == "mup" and width < base_width:
        raise ConfigError(f"param=mup needs width >= base_width ({base_width}): m = width/base_width < 1 shrinks "
                          f"the net below the one its lr was tuned on; got width={width}")


def init_var_factor(param: str, kind: str, m: float, mup_readout: str = "scaled") -> float:
    """Table 3, row "init Var", as a factor on the init's variance."""
    if param == "mup" and kind == "output":
        return 0.0 if mup_readout == "zero" else 1 / m  # muP 1/(fan_in m), or zero
    return 1.0  # 1/fan_in (input, hidden; SP and NTK output)


def sgd_lr(param: str, kind: str, m: float) -> tuple[float, float]:
    """Table 3, row "SGD lr": (weight, bias) factors on eta. Biases sit in the input column."""
    if param != "mup":
        return 1.0, 1.0  # SP and NTK: eta
    weight = {"input": m, "hidden": 1.0, "output": 1 / m}[kind]  # muP eta m | eta | eta/m
    return weight, m  # biases: eta m


def adam_lr(param: str, kind: str, m: float) -> tuple[float, float]:
    """Table 3, row "Adam lr": (weight, bias) factors on eta. Biases sit in the input column."""
    if param != "mup":
        return 1.0, 1.0
    weight = {"input": 1.0, "hidden": 1 / m, "output": 1 / m}[kind]  # eta | muP eta/m | muP eta/m
    return weight, 1.0  # biases: eta


def layers(param: str, optimizer: str, dims: list[int], base_width: int, mup_readout: str = "scaled") -> list[Layer]:
    """Per Linear layer (dims = [input_dim, width, ..., width, classes]): its kind and multipliers."""
    width = dims[1]
    m = width_mult(width, base_width)
    out = []
    for kind, fan_in in zip(kinds(len(dims) - 1), dims[:-1]):
        lr_w, lr_b = (sgd_lr if optimizer == "sgd" else adam_lr)(param, kind, m)
        ntk = param == "ntk"
        out.append(Layer(kind, math.sqrt(fan_in) if ntk else math.sqrt(init_var_factor(param, kind, m, mup_readout)),
                         1 / math.sqrt(fan_in) if ntk else 1.0, lr_w, lr_b))
    return out


def as_params(ls: list[Layer]) -> dict:
    """The multipliers as run params, one per field, a comma list over the Linears L01, L02, ...:
    param.lr_weight = "1,0.25,0.25" (a 12-layer net stays 5 params, not 60)."""
    return {f"param.{k}": ",".join(f"{getattr(l, k):.6g}" if k != "kind" else l.kind for l in ls)
            for k in asdict(ls[0])}
