"""Every action kind, one module (or package) each, registered by name in ``REGISTRY``.

Adding an action is adding its module here: every module of this package is imported (and so
registers its action) when the package is; ``base`` and the shared helpers register nothing.
See docs/extending.md.

A deployed remediator imports only what it runs: the CDK app sets ``REMEDIATION_ACTION_MODULES``
on each function to the modules of its action and of its routes' follow-up steps (computed
at synth from where each registered action lives). Unset (the tests, the CLI, the CDK app,
the drill, the revert remediator, which may undo any action): every module. A request for an
action whose module is not loaded is refused as unknown, as any unknown action is.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
from collections.abc import Iterable

from .base import REGISTRY, Action, Plan, VerifyError, get_action

__all__ = ["MODULES_VARIABLE", "REGISTRY", "Action", "Plan", "VerifyError", "get_action"]

#: modules of this package that hold no action
HELPERS = frozenset({"base", "arns"})
#: the environment variable naming the action modules a remediator needs (comma-separated)
MODULES_VARIABLE = "REMEDIATION_ACTION_MODULES"


def modules() -> list[str]:
    """Every action module of this package."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if m.name not in HELPERS)


def module_of(action: str) -> str:
    """The module of this package that registers ``action`` (e.g. ``capacity``)."""
    return get_action(action).__module__.split(".actions.", 1)[1].split(".", 1)[0]


def load(names: Iterable[str] | None = None) -> None:
    """Import action modules (each registers its actions): ``names``, or every one."""
    known = modules()
    for name in known if names is None else names:
        if name not in known:
            raise ImportError(f"{MODULES_VARIABLE}: no action module {name!r}; known: {known}")
        importlib.import_module(f"{__name__}.{name}")


load([m for m in os.environ.get(MODULES_VARIABLE, "").split(",") if m] or None)
