"""Lazy attributes for a package: a name is imported the first time it is touched.

``import coursekit`` then costs nothing but this file: torch, matplotlib and the
rest load when a notebook first reaches ``coursekit.optim`` or ``coursekit.seed``,
and a grading child that never does so never pays for them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def attach(package: str, submodules: tuple[str, ...] = (), names: Mapping[str, str] | None = None
           ) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """``__getattr__``, ``__dir__`` and ``__all__`` for ``package``.

    ``submodules`` are loaded as ``package.<name>``; ``names`` maps an attribute
    to the module (relative to ``package``) that defines it.
    """
    names = dict(names or {})
    public = sorted({*submodules, *names})

    def __getattr__(name: str) -> Any:
        if name in submodules:
            return importlib.import_module(f"{package}.{name}")
        if name in names:
            return getattr(importlib.import_module(f"{package}.{names[name]}"), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return public

    return __getattr__, __dir__, public
