"""A name -> builder registry, so notebooks and tests can ask for any model by name."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from torch import nn

_Builder = TypeVar("_Builder", bound=Callable[..., nn.Module])
_MODELS: dict[str, Callable[..., nn.Module]] = {}


def register_model(name: str | None = None) -> Callable[[_Builder], _Builder]:
    """Decorator that registers a builder under `name` (default: the function's name)."""

    def wrapper(fn: _Builder) -> _Builder:
        key = fn.__name__ if name is None else name
        if key in _MODELS:
            raise ValueError(f"model {key!r} is already registered (by {_MODELS[key].__module__})")
        _MODELS[key] = fn
        return fn

    return wrapper


def list_models() -> list[str]:
    """Sorted names of every registered builder."""
    return sorted(_MODELS)


def get_model(name: str, **kwargs) -> nn.Module:
    """Build the registered model `name`, passing `kwargs` to its builder."""
    if name not in _MODELS:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(list_models())}")
    return _MODELS[name](**kwargs)
