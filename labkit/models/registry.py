"""A name -> builder registry, so notebooks and tests can ask for any model by name.

Every model a registered builder returns remembers how it was built
(`model.labkit_builder == (name, {argument: value})`), so a grader can rebuild the same
architecture from data alone and load the weights into it.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from torch import nn

__all__ = ["get_model", "list_models", "named_builder", "register_model"]

_Builder = TypeVar("_Builder", bound=Callable[..., nn.Module])
_Model = TypeVar("_Model", bound=nn.Module)
_MODELS: dict[str, Callable[..., nn.Module]] = {}


def _named_arguments(fn: Callable, args: tuple, kwargs: dict) -> dict[str, Any]:
    """The arguments of a call to `fn` by parameter name, `**kwargs` flattened."""
    signature = inspect.signature(fn)
    named: dict[str, Any] = {}
    for name, value in signature.bind(*args, **kwargs).arguments.items():
        if signature.parameters[name].kind is inspect.Parameter.VAR_KEYWORD:
            named.update(value)
        else:
            named[name] = value
    return named


def register_model(name: str | None = None) -> Callable[[_Builder], _Builder]:
    """Decorator that registers a builder under `name` (default: the function's name)."""

    def wrapper(fn: _Builder) -> _Builder:
        key = fn.__name__ if name is None else name
        if key in _MODELS:
            raise ValueError(f"model {key!r} is already registered (by {_MODELS[key].__module__})")

        @functools.wraps(fn)
        def build(*args: Any, **kwargs: Any) -> nn.Module:
            model = fn(*args, **kwargs)
            model.labkit_builder = (key, _named_arguments(fn, args, kwargs))
            return model

        _MODELS[key] = build
        return build  # type: ignore[return-value]

    return wrapper


def named_builder(name: str, doc: str, build: Callable[..., _Model]) -> Callable[..., _Model]:
    """Register `build` (a family's builder with its arguments fixed, e.g. a lambda) under
    `name`, with that name and `doc` as its docstring, and return it: a family's named
    configurations (`vgg16`, `res2net50_26w_4s`) are then one line each."""
    build.__name__ = build.__qualname__ = name
    build.__doc__ = doc
    return register_model(name)(build)


def list_models() -> list[str]:
    """Sorted names of every registered builder."""
    return sorted(_MODELS)


def get_model(name: str, **kwargs) -> nn.Module:
    """Build the registered model `name`, passing `kwargs` to its builder."""
    if name not in _MODELS:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(list_models())}")
    return _MODELS[name](**kwargs)
