"""What every lab's settings have in common: a profile name, a summary line, overrides.

A lab module defines a frozen dataclass deriving from `LabSettings`, one instance per profile
in a dict, and picks one with `choose`. A field whose metadata has a `"show"` format appears in
the lab's printed profile line, e.g. `field(default=20, metadata={"show": "{} epochs"})`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, is_dataclass, replace
from types import UnionType
from typing import Any, Self, TypeVar, Union, get_args, get_origin, get_type_hints

import torch

from labkit.config import PROFILE_NAMES, profile_name
from labkit.data.synthbirds import SynthBirdsSpec
from labkit.training.recipe import Recipe

__all__ = [
    "REHEARSE_ENV",
    "LabSettings",
    "choose",
    "rehearsal_birds",
    "rehearsal_recipe",
    "rehearse_as",
    "rehearsing",
    "shown",
    "shown_fields",
]

REHEARSE_ENV = "LABKIT_REHEARSE"  # set (not "" or "0"): every lab's settings are a rehearsal's


def rehearsing(flag: bool | None = None) -> bool:
    """`flag` if given, else whether `$LABKIT_REHEARSE` is set to anything but "", "0"."""
    if flag is not None:
        return flag
    return os.environ.get(REHEARSE_ENV, "").strip().lower() not in ("", "0", "false", "no")


def rehearsal_recipe(recipe: Recipe) -> Recipe:
    """`recipe` as a rehearsal trains it: one epoch of at most two optimiser steps of
    micro-batches of at most 2 (accumulation kept, up to 2), two validation batches; the
    optimiser and schedule are the recipe's."""
    return replace(
        recipe,
        num_epochs=1,
        batch_size=min(recipe.batch_size, 2),
        accum_steps=min(recipe.accum_steps, 2),
        max_steps=2,
        max_eval_batches=2,
    )


def rehearsal_birds(spec: SynthBirdsSpec) -> SynthBirdsSpec:
    """A synthetic bird set at `spec`'s image size with at most 5 classes of 4 + 2 images:
    a rehearsal's shapes, without its hours."""
    return replace(
        spec,
        num_classes=min(spec.num_classes, 5),
        train_per_class=min(spec.train_per_class, 4),
        test_per_class=min(spec.test_per_class, 2),
    )


def rehearse_as(value: Any | Callable[[Any], Any]) -> dict[str, Any]:
    """Field metadata: under a rehearsal the field takes `value` (a callable: of its value)."""
    return {"rehearse": value}


def shown(label: str, none: str | None = None) -> dict[str, str]:
    """Field metadata that puts the field in the profile line, formatted with `label`; a value
    of None shows as `none` (default: the label with "all")."""
    return {"show": label, "none": none if none is not None else label.format("all")}


def shown_fields(**labels: str) -> dict[str, dict[str, str]]:
    """Field metadata for a field holding a dataclass (a training `Recipe`): these of its
    fields appear in the profile line, in this order, e.g.
    `shown_fields(num_epochs="{} epochs")`."""
    return {"show_fields": labels}


@dataclass(frozen=True)
class LabSettings:
    """The base of every lab's settings: the profile they belong to."""

    profile: str  # smoke, cpu or full (labkit.config.PROFILE_NAMES)
    # the profile's shapes with a couple of steps and images (`rehearsal`); its runs apart
    rehearse: bool = False

    def __post_init__(self) -> None:
        """Check every field against its annotation, so that a mistyped override fails in the
        lab's first cell, not in a training cell minutes later.

        Raises:
            TypeError: a field whose value is not of its annotated type (an int field refuses a
                bool or a float; a float field takes an int).
        """
        hints = get_type_hints(type(self))
        for f in fields(self):
            value, expected = getattr(self, f.name), hints[f.name]
            if not _matches(value, expected):
                raise TypeError(
                    f"{type(self).__module__} setting {f.name}={value!r} should be "
                    f"{_type_name(expected)}, not {type(value).__name__}"
                )

    def summary(self) -> str:
        """One line naming the profile and the sizes this lab shows, e.g.
        `profile: cpu (images 16px, 10 epochs, batch 64)`."""
        parts = []
        for f in fields(self):
            value = getattr(self, f.name)
            if "show" in f.metadata:
                label = f.metadata["show"]
                none = f.metadata.get("none", label.format("all"))
                parts.append(none if value is None else label.format(value))
            for name, label in f.metadata.get("show_fields", {}).items():
                parts.append(label.format(getattr(value, name)))
        return f"profile: {self.profile} ({', '.join(parts)})"

    def rehearsal(self) -> Self:
        """These settings as a rehearsal runs them: every model, image size, crop, width and
        schedule kept; every `Recipe` field capped (`rehearsal_recipe`), every synthetic bird
        set shrunk (`rehearsal_birds`), and each field whose metadata says `rehearse`
        (`rehearse_as`) given that value. Returns a new instance with `rehearse=True`."""
        changes: dict[str, Any] = {"rehearse": True}
        for f in fields(self):
            value = getattr(self, f.name)
            if "rehearse" in f.metadata:
                rule = f.metadata["rehearse"]
                changes[f.name] = rule(value) if callable(rule) else rule
            elif isinstance(value, Recipe):
                changes[f.name] = rehearsal_recipe(value)
            elif isinstance(value, SynthBirdsSpec):
                changes[f.name] = rehearsal_birds(value)
        return replace(self, **changes)

    def memory_needs(self, device: torch.device) -> dict[str, tuple[float, float]]:
        """Recipe field -> (fixed bytes, bytes per image) of one training step of its network
        on `device`, measured (`labkit.training.memory.per_image_bytes`), for the recipes
        whose micro-batch `labkit.labs.session.start_lab` fits to a CUDA card's free memory.
        None here; a lab whose full profile fills a card measures its own."""
        return {}

    def builtin_birds(self) -> tuple[SynthBirdsSpec, ...]:
        """The synthetic bird sets the lab's notebook writes under the data folder when the real
        data is absent (none here; the bird labs' settings name theirs). The grader writes them
        first (`labkit.grading.scheduler.lab_data`): a sandboxed kernel sees that folder
        read-only. The built-in digits are always written."""
        return ()


def _matches(value: Any, expected: Any) -> bool:
    options = get_args(expected) if get_origin(expected) in (Union, UnionType) else (expected,)
    for option in options:
        if option is type(None) and value is None:
            return True
        if option is int and isinstance(value, int) and not isinstance(value, bool):
            return True
        if option is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return True
        if option in (str, bool) and isinstance(value, option):
            return True
        plain = option in (int, float, str, bool, type(None))
        if not plain and isinstance(option, type) and isinstance(value, option):
            return True  # a nested dataclass, say one training stage
    return False


def _type_name(expected: Any) -> str:
    options = get_args(expected) if get_origin(expected) in (Union, UnionType) else (expected,)
    return " or ".join(
        "None" if o is type(None) else getattr(o, "__name__", str(o)) for o in options
    )


Settings = TypeVar("Settings", bound=LabSettings)


def choose(
    table: Mapping[str, Settings],
    profile: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    rehearse: bool | None = None,
) -> Settings:
    """The settings of `profile` (see `labkit.config.profile_name`) with single fields replaced,
    then, when `rehearse` (default: `$LABKIT_REHEARSE`, see `rehearsing`), as a rehearsal runs
    them (`LabSettings.rehearsal`).

    A field that holds a dataclass of its own (say one training stage of a two-stage lab) takes
    a dict of the fields to change in it: `{"stage1": {"lr": 0.5}}` keeps its other fields.

    Raises:
        ValueError: an unknown profile, or an override that names no field (the message lists
            the fields).
    """
    name = profile_name(profile)
    missing = [p for p in PROFILE_NAMES if p not in table]
    if missing:
        raise ValueError(f"the lab defines no settings for profile(s) {missing}")
    base = table[name]
    known = {f.name for f in fields(base)} - {"profile", "rehearse"}
    unknown = sorted(set(overrides or {}) - known)
    if unknown:
        raise ValueError(
            f"unknown settings {unknown} for {type(base).__module__}; known: {sorted(known)}"
        )
    changes = {
        key: _merged(getattr(base, key), value, key) for key, value in (overrides or {}).items()
    }
    chosen = replace(base, **changes)
    return chosen.rehearsal() if rehearsing(rehearse) else chosen


def _merged(current: Any, value: Any, name: str) -> Any:
    """`value`, or for a dataclass field given a dict, the dataclass with those fields changed."""
    if not (is_dataclass(current) and isinstance(value, Mapping)):
        return value
    known = {f.name for f in fields(current)}
    unknown = sorted(set(value) - known)
    if unknown:
        raise ValueError(f"unknown settings {unknown} in {name!r}; known: {sorted(known)}")
    return replace(current, **value)
