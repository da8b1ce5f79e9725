"""Every action kind, one module (or package) each, registered by name in ``REGISTRY``.

Adding an action is adding its module here: every module of this package is imported (and so
registers its action) when the package is; ``base`` and the shared helpers register nothing.
See docs/extending.md.
"""

from __future__ import annotations

import importlib
import pkgutil

from .base import REGISTRY, Action, Plan, VerifyError, get_action

__all__ = ["REGISTRY", "Action", "Plan", "VerifyError", "get_action"]

#: modules of this package that hold no action
HELPERS = frozenset({"base", "arns"})

for _module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    if _module not in HELPERS:
        importlib.import_module(f"{__name__}.{_module}")
