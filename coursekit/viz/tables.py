"""Records (one dict per row) as plain-text tables and as grids.

``format_table(records)`` prints a list of results the way every lecture shows
them; ``pivot(records, row, col, value)`` arranges them as the grid a heatmap
draws (reducing repeats with ``reduce="mean"``, say). A sweep's table and grid
(``coursekit.experiments.sweep.SweepResult``) are these two functions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from numbers import Integral, Real
from typing import Any, NamedTuple

import numpy as np

from coursekit import _checks as checks

__all__ = ["Pivot", "format_table", "pivot"]


def _format_value(value: Any, fmt: str | Callable[[Any], str]) -> str:
    """Real non-integers through ``fmt``; integers, strings and the rest through ``str``."""
    if callable(fmt):
        return fmt(value)
    if isinstance(value, Real) and not isinstance(value, (bool, Integral)):
        return format(float(value), fmt)
    return str(value)



class Pivot(NamedTuple):
    """A metric laid out over two keys: ``values[i, j]`` at ``rows[i]``, ``cols[j]``."""

    rows: list[Any]
    cols: list[Any]
    values: np.ndarray


_REDUCERS: dict[str, Callable[[np.ndarray], Any]] = {
    "mean": np.mean, "median": np.median, "min": np.min, "max": np.max,
}


def pivot(records: Sequence[Mapping[str, Any]], row: str, col: str, value: str,
          reduce: str | None = None, *, rows: Sequence[Any] | None = None,
          cols: Sequence[Any] | None = None) -> Pivot:
    """Lay ``record[value]`` out over ``record[row]`` x ``record[col]``, for :func:`heatmap`.

    ``values[i, j]`` is the value of the records at ``rows[i]``, ``cols[j]``, NaN
    where there is none. A NaN value is kept (a diverged run makes its cell NaN).

    The axes. Values are matched by equality (``==``, so ``1`` and ``1.0`` are one
    value, and unhashable values such as lists work). Without ``rows`` (``cols``),
    the axis is the distinct values found in the records, sorted, or in the order
    of first appearance when they cannot be sorted (mixed types). Given, it is
    taken as it is, in that order: a value without records gets a row (column)
    of NaN, and a record whose value is not on the axis is an error. A sweep passes its grid
    order this way.

    Parameters
    ----------
    records : sequence of dict
        One dict per row; each must hold ``row``, ``col`` and a number at ``value``.
    row, col, value : str
        Keys of the rows (y axis), the columns (x axis) and the metric.
    reduce : {"mean", "median", "min", "max"}, optional
        How several records in one cell become one number (repeats over seeds).
        None (default): two records for one cell raise ``ValueError``.
    rows, cols : sequence, optional
        The axes' values in order (default: from the records, as above).

    Returns
    -------
    Pivot
        ``rows, cols, values``, with ``values`` of shape ``(len(rows), len(cols))``.
    """
    if reduce is not None:
        checks.choice("reduce", reduce, _REDUCERS)
    for k, record in enumerate(records):
        for key in (row, col, value):
            if key not in record:
                raise checks.invalid(f"records[{k}]", f"a dict with the key {key!r}", record)
        if not isinstance(record[value], Real) or isinstance(record[value], bool):
            raise checks.invalid(f"records[{k}][{value!r}]", "a number", record[value])
    rows, cols = _axis(records, row, rows), _axis(records, col, cols)
    cells: dict[tuple[int, int], list[float]] = {}
    for k, record in enumerate(records):
        cell = (_position(rows, record[row], f"records[{k}][{row!r}]"),
                _position(cols, record[col], f"records[{k}][{col!r}]"))
        if reduce is None and cell in cells:
            raise ValueError(f"records must hold one record per cell unless reduce= combines "
                             f"them, got two records for {row}={record[row]!r}, "
                             f"{col}={record[col]!r}")
        cells.setdefault(cell, []).append(float(record[value]))
    values = np.full((len(rows), len(cols)), np.nan)
    for (i, j), numbers in cells.items():
        values[i, j] = numbers[0] if reduce is None else _REDUCERS[reduce](np.array(numbers))
    return Pivot(rows, cols, values)


def _axis(records: Sequence[Mapping[str, Any]], key: str, given: Sequence[Any] | None
          ) -> list[Any]:
    """``given`` as a list, or the distinct ``record[key]`` sorted (first-seen if unsortable)."""
    if given is not None:
        return list(given)
    found = _distinct(record[key] for record in records)
    try:
        return sorted(found)
    except TypeError:  # mixed types
        return found


def _distinct(values: Iterable[Any]) -> list[Any]:
    """The distinct values in order of first appearance, by ``==`` (no hashing)."""
    distinct: list[Any] = []
    for value in values:
        if not any(value == known for known in distinct):
            distinct.append(value)
    return distinct


def _position(axis: list[Any], item: Any, name: str) -> int:
    for i, known in enumerate(axis):
        if known == item:
            return i
    raise checks.invalid(name, f"on the axis {axis!r}", item)


def _columns(records: Sequence[Mapping[str, Any]], columns: Sequence[str] | None) -> list[str]:
    if isinstance(records, Mapping) or not all(isinstance(r, Mapping) for r in records):
        raise checks.invalid("records", "a list of dicts (one per row)", records, TypeError)
    if columns is None:
        return list(dict.fromkeys(key for record in records for key in record))
    return list(columns)



def _cells(records: Sequence[Mapping[str, Any]], columns: list[str],
           fmt: str | Mapping[str, str]) -> list[list[str]]:
    def spec(column: str) -> str:
        return fmt.get(column, ".4g") if isinstance(fmt, Mapping) else fmt

    return [[_format_value(record[c], spec(c)) if c in record else "" for c in columns]
            for record in records]



def format_table(records: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None,
                 fmt: str | Mapping[str, str] = ".4g") -> str:
    """A list of records as an aligned plain-text table.

    Columns whose values are all numbers are right-aligned, the others left-aligned;
    a line of dashes separates the header. Missing entries are left blank.

    Parameters
    ----------
    records : sequence of dict
        One dict per row, column name -> value.
    columns : sequence of str, optional
        Which columns, in order (default: every key, in first-seen order).
    fmt : str or mapping of column to str
        Format spec for non-integer numbers (``format(v, fmt)``), for all
        columns or per column (others default to ``".4g"``).

    Returns
    -------
    str
    """
    columns = _columns(records, columns)
    cells = _cells(records, columns, fmt)
    numeric = [all(isinstance(r[c], Real) and not isinstance(r[c], bool)
                   for r in records if c in r) for c in columns]
    widths = [max([len(c), *(len(row[k]) for row in cells)]) for k, c in enumerate(columns)]

    def line(texts: list[str]) -> str:
        return "  ".join(t.rjust(w) if right else t.ljust(w)
                         for t, w, right in zip(texts, widths, numeric, strict=True)).rstrip()

    lines = [line(columns), line(["-" * w for w in widths]), *(line(row) for row in cells)]
    return "\n".join(lines)
