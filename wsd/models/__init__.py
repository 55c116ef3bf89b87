"""Registry of encoder architectures, filled by the ``@register(name)`` decorator.

Each architecture lives in its own module ``wsd/models/arch/<name>.py`` and registers a
:class:`wsd.models.base.WsdModel` subclass.  This module does not import torch: every module
of :mod:`wsd.models.arch` is imported on first use (``names``, ``get``, ``build``), so the
CLI can import the registry at start-up for free.  Adding an architecture is adding one
file; help texts, ``wsd info`` and the contract tests list the registry.

>>> from wsd import models
>>> models.names()                                        # doctest: +SKIP
['convae', 'gan', 'lstm']
>>> m = models.build("convae", frames=32, bins=256, width="0.25")   # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Callable

from wsd.errors import UsageError

if TYPE_CHECKING:  # pragma: no cover
    from wsd.models.base import WsdModel

__all__ = ["UnknownArchitecture", "ArchParamError", "register", "get", "names", "build"]


_REGISTRY: dict[str, type] = {}
_loaded = False


class UnknownArchitecture(UsageError):
    """An architecture name that is not registered; the message lists the valid names."""


class ArchParamError(UsageError):
    """An unknown architecture parameter, a value of the wrong type, or an input shape the
    architecture cannot take; the message names the valid keys or the constraint."""


def register(name: str) -> Callable[[type], type]:
    """Class decorator registering a model class under ``name`` (also set as ``cls.name``).

    Raises ``ValueError`` (a programming error, not a usage error) when ``name`` is
    already taken, whichever class holds it.
    """

    def wrap(cls: type) -> type:
        if name in _REGISTRY:
            other = _REGISTRY[name]
            raise ValueError(
                f"architecture {name!r} is already registered by "
                f"{other.__module__}.{other.__qualname__}"
            )
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return wrap


def _load() -> None:
    """Import every module of :mod:`wsd.models.arch` (this imports torch)."""
    global _loaded
    if _loaded:
        return
    import pkgutil

    from wsd.models import arch

    for info in sorted(pkgutil.iter_modules(arch.__path__), key=lambda i: i.name):
        importlib.import_module(f"{arch.__name__}.{info.name}")
    _loaded = True


def names() -> list[str]:
    """Sorted names of all registered architectures."""
    _load()
    return sorted(_REGISTRY)


def get(name: str) -> type[WsdModel]:
    """The model class registered as ``name``; :class:`UnknownArchitecture` otherwise."""
    _load()
    try:
        return _REGISTRY[name]
    except KeyError:
        choices = ", ".join(sorted(_REGISTRY))
        raise UnknownArchitecture(
            f"unknown architecture {name!r}; choose one of: {choices}"
        ) from None


def build(name: str, frames: int, bins: int, **arch_params: Any) -> WsdModel:
    """Instantiate architecture ``name`` for windows of ``frames`` x ``bins``.

    ``arch_params`` may be strings (from ``--arch-param key=value``); they are coerced to the
    type of the architecture's default.  Unknown keys raise :class:`ArchParamError` listing
    the valid ones.
    """
    return get(name)(frames=frames, bins=bins, **arch_params)
