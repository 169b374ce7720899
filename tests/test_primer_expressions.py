"""coursekit.primer.expressions: the parser against Python's own reading of the same
text, gradients of generated expressions against torch and central differences, and
errors that point at the problem."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from coursekit.primer.engine import Tensor
from coursekit.primer.expressions import (
    ExpressionError,
    evaluate,
    parse,
    parse_expression,
    parse_layers,
)

VARIABLES = ["xa", "xb"]
PARAMS = ["ab", "cd", "k2"]
POSITIVE_ATOMS = st.sampled_from([*VARIABLES, *PARAMS, "2", "0.5", "1.5e0"])


def _expressions() -> st.SearchStrategy[str]:
    """Expression text with only the parentheses the generator chose: precedence matters.

    Divisors and bases of fractional or negative powers are positive atoms, so every
    generated expression is finite for the positive values used below.
    """
    def extend(sub):
        return st.one_of(
            st.tuples(sub, st.sampled_from(["+", "-", "*"]), sub).map(" ".join),
            st.tuples(sub, POSITIVE_ATOMS).map(lambda t: f"{t[0]} / {t[1]}"),
            sub.map(lambda s: f"({s})"),
            sub.map(lambda s: f"-{s}"),
            st.tuples(sub, st.sampled_from(["^2", "**3", "^ 1"])).map(lambda t: f"({t[0]}){t[1]}"),
            st.tuples(POSITIVE_ATOMS, st.sampled_from(["^0.5", "**-1", "^(-2)", "** 1.5"]))
            .map("".join),
        )
    return st.recursive(POSITIVE_ATOMS, extend, max_leaves=8)


def _python(text: str) -> str:
    return text.replace("^", "**")


@settings(max_examples=150, deadline=None)
@given(_expressions(), st.lists(st.floats(0.5, 1.5), min_size=5, max_size=5))
def test_parser_reads_expressions_as_python_does(text, values):
    env = dict(zip(VARIABLES + PARAMS, values, strict=True))
    ours = evaluate(parse_expression(text), env.__getitem__)
    assert ours == pytest.approx(eval(_python(text), {}, dict(env)), rel=1e-13)  # Python reads it


@settings(max_examples=40, deadline=None)
@given(_expressions(), st.integers(0, 2**16))
def test_generated_expression_gradients_match_torch_and_differences(text, seed):
    text = f"xa * ab + {text}"  # depends on a variable and a parameter whatever was drawn
    rng = np.random.default_rng(seed)
    values = {name: rng.uniform(0.5, 1.5, size=3) for name in VARIABLES}
    values |= {name: rng.uniform(0.5, 1.5) for name in PARAMS}
    R = rng.uniform(0.5, 1.5, size=3)
    program = parse(f"xo = {text}")

    leaves = {name: Tensor(v, requires_grad=True) for name, v in values.items()}
    out = program.evaluate(leaves)["xo"]
    (out * R).sum().backward()

    t_leaves = {name: torch.tensor(v, dtype=torch.float64, requires_grad=True)
                for name, v in values.items()}
    t_out = eval(_python(text), {}, dict(t_leaves))  # the independent reading
    (t_out * torch.from_numpy(R)).sum().backward()
    np.testing.assert_allclose(out.value, t_out.detach().numpy(), rtol=1e-12)
    for name in values:
        assert (leaves[name].grad is None) == (t_leaves[name].grad is None), name  # unused
        if leaves[name].grad is not None:
            np.testing.assert_allclose(leaves[name].grad, t_leaves[name].grad.numpy(),
                                       rtol=1e-10, atol=1e-12, err_msg=name)

    def f(env):
        return float(np.sum(program.evaluate(env)["xo"] * R))

    h = 1e-6
    for name in PARAMS:
        up, down = dict(values), dict(values)
        up[name] = values[name] + h
        down[name] = values[name] - h
        numeric = (f(up) - f(down)) / (2 * h)
        grad = 0.0 if leaves[name].grad is None else leaves[name].grad
        assert grad == pytest.approx(numeric, rel=1e-5, abs=1e-6), name


def test_primer_layered_example_parses_into_its_inputs_params_and_order():
    program = parse("""
        xo = cp*xw + cq*xz          # the output comes first: order does not matter
        xw = ap*xp + aq*xq + ar*xr + as*xs
        xz = bp*xp + bq*xq + br*xr + bs*xs
    """.replace("\n        ", "\n"))
    assert program.inputs == ("xp", "xq", "xr", "xs")
    assert program.params == ("cp", "cq", "ap", "aq", "ar", "as", "bp", "bq", "br", "bs")
    assert program.outputs == ("xo",)
    order = [a.target for a in program.assignments]
    assert order.index("xo") > max(order.index("xw"), order.index("xz"))


@settings(max_examples=30, deadline=None)
@given(st.permutations(["xc = ab*xa + xb", "xd = xc^2 - cd*xa", "xe = xd / (xc + 3)",
                        "xf = xe*xc + xd"]), st.floats(0.5, 1.5))
def test_statement_order_does_not_change_the_values(statements, v):
    env = {"xa": v, "xb": 2 * v, "ab": 0.5, "cd": -1.5}
    xc = 0.5 * v + 2 * v
    xd = xc**2 + 1.5 * v
    xe = xd / (xc + 3)
    result = parse(statements).evaluate(env)
    assert result["xf"] == pytest.approx(xe * xc + xd, rel=1e-14)
    assert parse(statements).outputs == ("xf",)


def _caret_column(error: ExpressionError) -> int:
    source_line, caret_line = str(error).splitlines()[1:3]
    assert source_line.strip() == error.source.strip()
    return caret_line.index("^") - 4


@pytest.mark.parametrize(("source", "marker", "message"), [
    ("xw = ab**", None, "exponent of '\\*\\*' must be a numeric constant"),
    ("xw = ab*(xa + 2", None, "expected '\\)' to close the '\\('"),
    ("xw = ab * * xa", "* xa", "expected a name, a number or '\\('"),
    ("xw = ab $ xa", "$", "unexpected character '\\$'"),
    ("xw = ab^xa", "xa", "exponent of '\\^' must be a numeric constant, found 'xa'"),
    ("xw = xa^2^3", "^3", "chained powers"),
    ("ab = xa", "ab", "cannot assign to 'ab'"),
    ("xw xa", "xa", "expected '=' after 'xw'"),
    ("xw = 2ab", "ab", "unexpected 'ab'"),
    ("xw = (xa))", ")", "unexpected '\\)'"),
])
def test_syntax_errors_show_the_line_and_a_caret_at_the_problem(source, marker, message):
    with pytest.raises(ExpressionError, match=message) as info:
        parse(source)
    expected = len(source) if marker is None else source.rindex(marker)
    assert _caret_column(info.value) == expected
    assert str(info.value).startswith(f"line 1, column {expected + 1}:")


def test_unknown_variable_is_named_and_located():
    source = "xw = ab*xa + cd*xq"
    with pytest.raises(ExpressionError, match="unknown variable 'xq'") as info:
        parse(source, inputs=["xa", "xb"])
    assert _caret_column(info.value) == source.index("xq")


def test_redefinition_is_named_with_both_lines():
    with pytest.raises(ExpressionError, match=r"'xw' is defined twice \(first in line 1\)") as e:
        parse("xw = ab*xa\nxz = xw\nxw = cd*xa")
    assert str(e.value).startswith("line 3, column 1")


def test_cycles_are_reported_by_name():
    with pytest.raises(ExpressionError, match=r"cycle: xb -> xd -> xc -> xb \(each uses"):
        parse("xb = xa + xd\nxc = ab*xb\nxd = xc^2")
    with pytest.raises(ExpressionError, match="cycle: xa -> xa"):
        parse("xa = ab*xa")


def test_inputs_and_outputs_arguments_are_checked():
    with pytest.raises(ExpressionError, match="'xa' is an input and cannot be assigned"):
        parse("xa = ab*xb", inputs=["xa", "xb"])
    with pytest.raises(ExpressionError, match="unknown output 'xq'"):
        parse("xa = ab*xb", outputs=["xq"])
    with pytest.raises(ExpressionError, match="'ab' is not a variable name"):
        parse("xa = ab*xb", inputs=["ab"])
    with pytest.raises(ExpressionError, match="no assignments"):
        parse("# only a comment\n\n")
    assert parse("xo = ab*xb + xa", inputs=["xa", "xb", "xc"]).inputs == ("xa", "xb", "xc")


def test_evaluate_names_missing_values():
    with pytest.raises(ValueError, match="no value given for 'cd'"):
        parse("xo = ab*xa + cd").evaluate({"xa": 1.0, "ab": 2.0})


def test_layers_may_only_use_earlier_layers():
    program = parse_layers([["xw = ap*xp + aq*xq", "xz = bp*xp + bq*xq"], ["xo = cp*xw + cq*xz"]])
    assert program.layers == (("xw", "xz"), ("xo",))
    assert program.outputs == ("xo",)
    assert program.inputs == ("xp", "xq")
    with pytest.raises(ExpressionError, match="'xw' is defined in layer 1: layer 1 may only") as e:
        parse_layers([["xw = ap*xp", "xz = bp*xw"], ["xo = cp*xz"]])
    assert str(e.value).startswith(f"layer 1, expression 2, column {'xz = bp*xw'.index('xw') + 1}")
    with pytest.raises(ExpressionError, match="layer 2 must be a non-empty list"):
        parse_layers([["xw = ap*xp"], []])
