r"""The primer's expression language: a tokenizer, a parser and programs of assignments.

A network is written as assignments, one per line::

    xw = ap*xp + aq*xq + ar*xr + as*xs
    xz = bp*xp + bq*xq + br*xr + bs*xs
    xo = cp*xw + cq*xz

Names that start with a lowercase ``x`` are *variables* (inputs, or values
defined by an assignment); every other name is a learnable *parameter*. The
right-hand sides use ``+ - * /``, unary minus, powers by a numeric constant
(``^`` or ``**``, as in ``xa^2`` or ``xa**-0.5``), parentheses and numeric
literals. Precedence is Python's: ``**`` binds tighter than unary minus, which
binds tighter than ``* /``, then ``+ -``; operators of equal precedence group
to the left. ``#`` starts a comment.

The grammar, parsed by recursive descent (no ``eval``)::

    assignment := VARIABLE "=" sum
    sum        := product (("+" | "-") product)*
    product    := factor (("*" | "/") factor)*
    factor     := "-" factor | power
    power      := atom (("^" | "**") exponent)?
    exponent   := ["-" | "+"] NUMBER | "(" ["-" | "+"] NUMBER ")"
    atom       := NUMBER | NAME | "(" sum ")"

:func:`parse` turns a block of assignments into a :class:`Program`: a DAG of
assignments in any order, checked for unknown names, redefinitions and cycles
and sorted topologically. :func:`parse_layers` does the same for a layered
network, a list of layers of assignments, where a layer may use only the
inputs and earlier layers. Every error is an :class:`ExpressionError` that
names the problem and, where there is one, shows the line with a caret.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

__all__ = [
    "Assignment",
    "Binary",
    "ExpressionError",
    "Name",
    "Negate",
    "Number",
    "Power",
    "Program",
    "evaluate",
    "is_variable",
    "linear_terms",
    "names_in",
    "parse",
    "parse_expression",
    "parse_layers",
]


class ExpressionError(ValueError):
    """A malformed expression or program, with its location when it has one.

    Parameters
    ----------
    message : str
        What is wrong, naming the offending names.
    source : str, optional
        The line of source the error is in.
    column : int, optional
        0-based column of the problem in ``source``; a caret marks it.
    where : str, optional
        Where ``source`` comes from, e.g. ``"line 3"`` or ``"layer 2, expression 1"``.
    """

    def __init__(self, message: str, source: str | None = None, column: int | None = None,
                 where: str | None = None):
        self.message = message
        self.source = source
        self.column = column
        self.where = where
        text = message
        if where is not None:
            text = f"{where}" + (f", column {column + 1}" if column is not None else "")
            text += f": {message}"
        if source is not None:
            text += f"\n    {source}"
            if column is not None:
                text += "\n    " + " " * column + "^"
        super().__init__(text)


def is_variable(name: str) -> bool:
    """Variables start with a lowercase ``x``; every other name is a parameter."""
    return name.startswith("x")


# --- the syntax tree ---------------------------------------------------------------------


@dataclass(frozen=True)
class Number:
    """A numeric literal."""

    value: float
    column: int


@dataclass(frozen=True)
class Name:
    """A variable or parameter name."""

    id: str
    column: int


@dataclass(frozen=True)
class Negate:
    """Unary minus: ``-operand``."""

    operand: Node
    column: int


@dataclass(frozen=True)
class Binary:
    """``left op right`` for ``op`` in ``+ - * /``."""

    op: str
    left: Node
    right: Node
    column: int


@dataclass(frozen=True)
class Power:
    """``base ^ exponent`` with a constant exponent."""

    base: Node
    exponent: float
    column: int


Node = Number | Name | Negate | Binary | Power


def names_in(node: Node) -> list[Name]:
    """Every :class:`Name` in the tree, left to right."""
    if isinstance(node, Name):
        return [node]
    if isinstance(node, Negate):
        return names_in(node.operand)
    if isinstance(node, Power):
        return names_in(node.base)
    if isinstance(node, Binary):
        return names_in(node.left) + names_in(node.right)
    return []


def linear_terms(node: Node) -> list[tuple[str, str]] | None:
    """``[(parameter, variable), ...]`` if ``node`` is ``p1*v1 + p2*v2 + ...``, else None.

    Each term is a parameter times a variable, in either order.
    """
    if isinstance(node, Binary) and node.op == "+":
        left, right = linear_terms(node.left), linear_terms(node.right)
        return None if left is None or right is None else left + right
    if (isinstance(node, Binary) and node.op == "*"
            and isinstance(node.left, Name) and isinstance(node.right, Name)
            and is_variable(node.left.id) != is_variable(node.right.id)):
        left, right = node.left.id, node.right.id
        return [(right, left)] if is_variable(left) else [(left, right)]
    return None


def evaluate(node: Node, lookup: Callable[[str], Any]) -> Any:
    """Evaluate a tree with Python's operators on whatever ``lookup(name)`` returns.

    Works for floats, numpy arrays, :class:`~coursekit.primer.engine.Tensor`
    (building a graph) and ``torch.Tensor`` alike.
    """
    if isinstance(node, Number):
        return node.value
    if isinstance(node, Name):
        return lookup(node.id)
    if isinstance(node, Negate):
        return -evaluate(node.operand, lookup)
    if isinstance(node, Power):
        return evaluate(node.base, lookup) ** node.exponent
    left, right = evaluate(node.left, lookup), evaluate(node.right, lookup)
    if node.op == "+":
        return left + right
    if node.op == "-":
        return left - right
    if node.op == "*":
        return left * right
    return left / right


# --- tokens and the parser ---------------------------------------------------------------

_TOKEN = re.compile(r"""
    (?P<number> (?:\d+\.?\d*|\.\d+) (?:[eE][-+]?\d+)? )
  | (?P<name>   [A-Za-z_][A-Za-z0-9_]* )
  | (?P<op>     \*\*|[-+*/^()=] )
""", re.VERBOSE)


@dataclass(frozen=True)
class _Token:
    kind: str  # "number", "name", "op" or "end"
    text: str
    column: int


def _tokenize(source: str, where: str | None) -> list[_Token]:
    tokens, i = [], 0
    while i < len(source):
        if source[i].isspace():
            i += 1
            continue
        if source[i] == "#":
            break
        match = _TOKEN.match(source, i)
        if match is None:
            raise ExpressionError(f"unexpected character {source[i]!r}", source, i, where)
        tokens.append(_Token(match.lastgroup, match.group(), i))
        i = match.end()
    tokens.append(_Token("end", "", len(source.split("#")[0].rstrip())))
    return tokens


class _Parser:
    """Recursive descent over one line's tokens; one method per grammar rule."""

    def __init__(self, source: str, where: str | None):
        self.source = source
        self.where = where
        self.tokens = _tokenize(source, where)
        self.i = 0

    def error(self, message: str, token: _Token) -> ExpressionError:
        return ExpressionError(message, self.source, token.column, self.where)

    @property
    def token(self) -> _Token:
        return self.tokens[self.i]

    def take(self, *texts: str) -> _Token | None:
        """Consume and return the current token if it is an operator in ``texts``."""
        if self.token.kind == "op" and self.token.text in texts:
            self.i += 1
            return self.tokens[self.i - 1]
        return None

    def describe(self, token: _Token) -> str:
        return "the end of the line" if token.kind == "end" else repr(token.text)

    def assignment(self) -> tuple[Name, Node]:
        target = self.token
        if target.kind != "name":
            raise self.error(f"expected a variable to assign to, found {self.describe(target)}",
                             target)
        if not is_variable(target.text):
            raise self.error(f"cannot assign to {target.text!r}: only variables (names "
                             "starting with 'x') can be assigned; other names are parameters",
                             target)
        self.i += 1
        if self.take("=") is None:
            raise self.error(f"expected '=' after {target.text!r}, found "
                             f"{self.describe(self.token)}", self.token)
        expr = self.whole_expression()
        return Name(target.text, target.column), expr

    def whole_expression(self) -> Node:
        expr = self.sum()
        if self.token.kind != "end":
            raise self.error(f"unexpected {self.describe(self.token)}: expected an operator "
                             "or the end of the line", self.token)
        return expr

    def sum(self) -> Node:
        node = self.product()
        while (op := self.take("+", "-")) is not None:
            node = Binary(op.text, node, self.product(), op.column)
        return node

    def product(self) -> Node:
        node = self.factor()
        while (op := self.take("*", "/")) is not None:
            node = Binary(op.text, node, self.factor(), op.column)
        return node

    def factor(self) -> Node:
        if (minus := self.take("-")) is not None:
            return Negate(self.factor(), minus.column)
        return self.power()

    def power(self) -> Node:
        base = self.atom()
        op = self.take("^", "**")
        if op is None:
            return base
        node = Power(base, self.exponent(op), op.column)
        if self.token.kind == "op" and self.token.text in ("^", "**"):
            raise self.error("chained powers are ambiguous: add parentheses", self.token)
        return node

    def exponent(self, op: _Token) -> float:
        parenthesised = self.take("(") is not None
        sign = self.take("-", "+")
        number = self.token
        if number.kind != "number":
            raise self.error(f"the exponent of {op.text!r} must be a numeric constant, found "
                             f"{self.describe(number)}", number)
        self.i += 1
        if parenthesised and self.take(")") is None:
            raise self.error(f"expected ')' after the exponent, found "
                             f"{self.describe(self.token)}", self.token)
        value = float(number.text)
        return -value if sign is not None and sign.text == "-" else value

    def atom(self) -> Node:
        token = self.token
        if token.kind == "number":
            self.i += 1
            return Number(float(token.text), token.column)
        if token.kind == "name":
            self.i += 1
            return Name(token.text, token.column)
        if self.take("(") is not None:
            node = self.sum()
            if self.take(")") is None:
                raise self.error(f"expected ')' to close the '(' at column {token.column + 1}, "
                                 f"found {self.describe(self.token)}", self.token)
            return node
        raise self.error(f"expected a name, a number or '(', found {self.describe(token)}",
                         token)


def parse_expression(source: str) -> Node:
    """Parse a right-hand side such as ``"ab*xa + bc*xb"`` into a syntax tree."""
    return _Parser(source, None).whole_expression()


# --- programs ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Assignment:
    """``target = expr``, with where it came from for error messages."""

    target: str
    expr: Node
    source: str
    where: str
    target_column: int

    def uses(self) -> list[Name]:
        """The names on the right-hand side, left to right."""
        return names_in(self.expr)

    def error(self, message: str, column: int | None = None) -> ExpressionError:
        """An :class:`ExpressionError` pointing into this assignment's line."""
        return ExpressionError(message, self.source, column, self.where)


@dataclass(frozen=True)
class Program:
    """A checked DAG of assignments.

    Attributes
    ----------
    assignments : tuple of Assignment
        In topological order: each after the assignments it uses.
    inputs : tuple of str
        Variables the program reads but does not define, in the given order or
        in order of first use.
    params : tuple of str
        Parameter names in order of first use.
    outputs : tuple of str
        The given outputs, or the defined variables no other assignment uses.
    layers : tuple of tuple of str, or None
        For a layered program, the variables each layer defines.
    """

    assignments: tuple[Assignment, ...]
    inputs: tuple[str, ...]
    params: tuple[str, ...]
    outputs: tuple[str, ...]
    layers: tuple[tuple[str, ...], ...] | None = None

    def __getitem__(self, target: str) -> Assignment:
        for assignment in self.assignments:
            if assignment.target == target:
                return assignment
        raise KeyError(target)

    def evaluate(self, values: Mapping[str, Any],
                 activation: Callable[[str, Any], Any] | None = None) -> dict[str, Any]:
        """Evaluate every assignment; return all variables (inputs included).

        Parameters
        ----------
        values : mapping
            A value for every input and every parameter (floats, arrays, engine
            tensors or torch tensors).
        activation : callable, optional
            ``activation(target, value)`` is applied to each assignment's value
            before later assignments use it (a neuron's bias and sigmoid).
        """
        missing = [n for n in (*self.inputs, *self.params) if n not in values]
        if missing:
            raise ValueError(f"no value given for {', '.join(map(repr, missing))}")
        env = dict(values)
        for assignment in self.assignments:
            value = evaluate(assignment.expr, env.__getitem__)
            env[assignment.target] = (value if activation is None
                                      else activation(assignment.target, value))
        return env


def _split_lines(source: str | Sequence[str]) -> list[tuple[str, str]]:
    lines = source.splitlines() if isinstance(source, str) else list(source)
    out = []
    for number, line in enumerate(lines, start=1):
        if not isinstance(line, str):
            raise TypeError(f"expressions must be strings, got {type(line).__name__}: {line!r}")
        if line.split("#")[0].strip():
            out.append((line, f"line {number}"))
    return out


def _parse_assignment(line: str, where: str) -> Assignment:
    if "\n" in line or "\r" in line:
        raise ExpressionError("one assignment per string: found a line break", where=where)
    target, expr = _Parser(line, where).assignment()
    return Assignment(target.id, expr, line, where, target.column)


def parse(source: str | Sequence[str], *, inputs: Sequence[str] | None = None,
          outputs: Sequence[str] | None = None) -> Program:
    """Parse and check a block of assignments (in any order) into a :class:`Program`.

    Parameters
    ----------
    source : str or sequence of str
        Assignments, one per line (blank lines and ``#`` comments are ignored).
    inputs : sequence of str, optional
        The input variables, in the order of the data's columns. When given,
        any other undefined variable is an error; when omitted, the inputs are
        the undefined variables in order of first use.
    outputs : sequence of str, optional
        The variables the program computes for its caller.

    Raises
    ------
    ExpressionError
        For malformed lines, unknown names, redefinitions and cycles.
    """
    statements = [_parse_assignment(line, where) for line, where in _split_lines(source)]
    if not statements:
        raise ExpressionError("no assignments found")
    return _check(statements, inputs, outputs, layers=None)


def parse_layers(layers: Sequence[Sequence[str]], *,
                 inputs: Sequence[str] | None = None) -> Program:
    """Parse a layered network: ``layers[k]`` lists the assignments of layer ``k + 1``.

    A layer may use the inputs and the variables of earlier layers only. The
    outputs are the last layer's variables.
    """
    if isinstance(layers, str) or not isinstance(layers, Sequence) or not layers:
        raise ExpressionError(f"layers must be a non-empty list of lists of assignments, "
                              f"got {layers!r}")
    statements: list[Assignment] = []
    layer_of: list[int] = []
    for k, layer in enumerate(layers, start=1):
        if isinstance(layer, str) or not isinstance(layer, Sequence) or not layer:
            raise ExpressionError(f"layer {k} must be a non-empty list of assignments, "
                                  f"got {layer!r}")
        for j, line in enumerate(layer, start=1):
            if not isinstance(line, str):
                raise TypeError(f"expressions must be strings, got {type(line).__name__}: "
                                f"{line!r}")
            statements.append(_parse_assignment(line, f"layer {k}, expression {j}"))
            layer_of.append(k)
    program = _check(statements, inputs, None, layers=None)
    defined_in = {s.target: k for s, k in zip(statements, layer_of, strict=True)}
    for statement, k in zip(statements, layer_of, strict=True):
        for name in statement.uses():
            if defined_in.get(name.id, 0) >= k:
                raise statement.error(
                    f"{name.id!r} is defined in layer {defined_in[name.id]}: layer {k} may only "
                    "use the inputs and variables of earlier layers", name.column)
    grouped = tuple(tuple(s.target for s, j in zip(statements, layer_of, strict=True) if j == k)
                    for k in range(1, len(layers) + 1))
    return replace(program, outputs=grouped[-1], layers=grouped)


def _check(statements: list[Assignment], inputs: Sequence[str] | None,
           outputs: Sequence[str] | None,
           layers: tuple[tuple[str, ...], ...] | None) -> Program:
    """Check names, redefinitions and cycles; sort the statements topologically."""
    defined: dict[str, Assignment] = {}
    for statement in statements:
        if statement.target in defined:
            first = defined[statement.target]
            raise statement.error(f"{statement.target!r} is defined twice (first in "
                                  f"{first.where})", statement.target_column)
        defined[statement.target] = statement

    used_vars: list[str] = []
    params: list[str] = []
    for statement in statements:
        for name in statement.uses():
            bucket = used_vars if is_variable(name.id) else params
            if name.id not in bucket:
                bucket.append(name.id)

    if inputs is None:
        inputs = tuple(v for v in used_vars if v not in defined)
    else:
        inputs = _check_names("inputs", inputs)
        for name in inputs:
            if name in defined:
                raise defined[name].error(f"{name!r} is an input and cannot be assigned",
                                          defined[name].target_column)
        for statement in statements:
            for name in statement.uses():
                if is_variable(name.id) and name.id not in defined and name.id not in inputs:
                    raise statement.error(f"unknown variable {name.id!r}: it is neither an "
                                          f"input {list(inputs)} nor defined", name.column)

    if outputs is None:
        outputs = tuple(s.target for s in statements if s.target not in used_vars)
    else:
        outputs = _check_names("outputs", outputs)
        unknown = [name for name in outputs if name not in defined]
        if unknown:
            raise ExpressionError(f"unknown output {', '.join(map(repr, unknown))}: "
                                  f"not defined by any assignment")

    order = _topological_sort(statements, defined)
    return Program(tuple(order), tuple(inputs), tuple(params), tuple(outputs), layers)


def _check_names(argument: str, names: Sequence[str]) -> tuple[str, ...]:
    if isinstance(names, str) or not all(isinstance(n, str) for n in names):
        raise ExpressionError(f"{argument} must be a list of variable names, got {names!r}")
    names = tuple(names)
    for name in names:
        if not is_variable(name) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise ExpressionError(f"{argument}: {name!r} is not a variable name (variables "
                                  "start with 'x')")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ExpressionError(f"{argument}: {', '.join(map(repr, duplicates))} listed twice")
    return names


def _topological_sort(statements: list[Assignment],
                      defined: dict[str, Assignment]) -> list[Assignment]:
    """Depth-first, in source order; a variable met again while still open closes a cycle."""
    order: list[Assignment] = []
    state: dict[str, str] = {}  # target -> "open" | "done"
    path: list[str] = []

    def visit(statement: Assignment) -> None:
        state[statement.target] = "open"
        path.append(statement.target)
        for name in statement.uses():
            if name.id not in defined:
                continue
            if state.get(name.id) == "open":
                cycle = [*path[path.index(name.id):], name.id]
                raise statement.error(f"cycle: {' -> '.join(cycle)} (each uses the next)",
                                      name.column)
            if name.id not in state:
                visit(defined[name.id])
        path.pop()
        state[statement.target] = "done"
        order.append(statement)

    for statement in statements:
        if statement.target not in state:
            visit(statement)
    return order
