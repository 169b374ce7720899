"""Records (one dict per row) as plain-text tables and as grids.

``format_table(records)`` prints a list of results the way every lecture shows
them; ``pivot(records, row, col, value)`` arranges them as the grid a heatmap
draws.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from numbers import Integral, Real
from typing import Any

import numpy as np

__all__ = ["format_table", "pivot"]


def _format_value(value: Any, fmt: str | Callable[[Any], str]) -> str:
    """Real non-integers through ``fmt``; integers, strings and the rest through ``str``."""
    if callable(fmt):
        return fmt(value)
    if isinstance(value, Real) and not isinstance(value, (bool, Integral)):
        return format(float(value), fmt)
    return str(value)



def pivot(records: Sequence[Mapping[str, Any]], row: str, col: str,
          value: str) -> tuple[list[Any], list[Any], np.ndarray]:
    """Turn a list of records into ``rows, cols, values`` for :func:`heatmap`.

    ``rows`` and ``cols`` are the distinct values of ``record[row]`` and
    ``record[col]``, sorted (or in first-seen order when they cannot be sorted);
    ``values[i, j]`` is ``record[value]`` for the record at ``rows[i], cols[j]``,
    NaN where no record exists. Two records for the same cell raise ``ValueError``.
    """
    cells: dict[tuple[Any, Any], float] = {}
    for k, record in enumerate(records):
        for key in (row, col, value):
            if key not in record:
                raise ValueError(f"Invalid records: record {k} has no key {key!r}")
        cell = (record[row], record[col])
        if cell in cells:
            raise ValueError(f"Invalid records: two records for {row}={cell[0]!r}, "
                             f"{col}={cell[1]!r}")
        cells[cell] = float(record[value])
    rows = _distinct([r for r, _ in cells])
    cols = _distinct([c for _, c in cells])
    values = np.full((len(rows), len(cols)), np.nan)
    for (r, c), v in cells.items():
        values[rows.index(r), cols.index(c)] = v
    return rows, cols, values



def _distinct(items: list[Any]) -> list[Any]:
    unique = list(dict.fromkeys(items))
    try:
        return sorted(unique)
    except TypeError:
        return unique



def _columns(records: Sequence[Mapping[str, Any]], columns: Sequence[str] | None) -> list[str]:
    if isinstance(records, Mapping) or not all(isinstance(r, Mapping) for r in records):
        raise TypeError("Invalid records: expected a list of dicts (one per row)")
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
