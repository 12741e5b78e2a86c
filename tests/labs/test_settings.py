"""Every lab's settings: one per profile, a profile line, overrides in one call."""

import dataclasses
import re

import pytest

from labkit.config import PROFILE_NAMES
from labkit.labs import densenet_resnext, facenet_knn
from labkit.labs.settings import LabSettings, choose, shown

LABS = [densenet_resnext, facenet_knn]


@pytest.mark.parametrize("lab", LABS, ids=lambda m: m.LAB)
def test_every_lab_has_frozen_settings_for_every_profile(lab) -> None:
    assert set(lab.PROFILES) == set(PROFILE_NAMES)
    for name, settings in lab.PROFILES.items():
        assert settings.profile == name
        with pytest.raises(dataclasses.FrozenInstanceError):
            settings.image_size = 1  # type: ignore[misc]
        assert settings.summary().startswith(f"profile: {name} (images ")


@pytest.mark.parametrize("lab", LABS, ids=lambda m: m.LAB)
def test_overriding_one_field_is_one_call(lab, monkeypatch: pytest.MonkeyPatch) -> None:
    assert lab.settings("full", eval_batch_size=64).eval_batch_size == 64
    one = lab.settings("full", training={"num_epochs": 1}).training
    assert one.num_epochs == 1 and one.lr == lab.PROFILES["full"].training.lr
    monkeypatch.setenv("LABKIT_PROFILE", "cpu")
    assert lab.settings() == lab.PROFILES["cpu"]
    with pytest.raises(ValueError, match=r"unknown settings \['profile'\]"):
        choose(lab.PROFILES, "full", {"profile": "cpu"})  # chosen by name, never overridden


def test_choose_refuses_a_lab_without_every_profile() -> None:
    @dataclasses.dataclass(frozen=True)
    class Partial(LabSettings):
        size: int | None = dataclasses.field(default=3, metadata=shown("size {}"))

    with pytest.raises(ValueError, match=r"no settings for profile\(s\) \['cpu', 'full'\]"):
        choose({"smoke": Partial("smoke")}, "smoke")
    table = {p: Partial(p) for p in PROFILE_NAMES}
    assert choose(table, "cpu", {"size": 5}).summary() == "profile: cpu (size 5)"
    assert Partial("full", size=None).summary() == "profile: full (size all)"


def test_a_nested_stage_takes_a_dict_of_its_changes() -> None:
    @dataclasses.dataclass(frozen=True)
    class Stage:
        lr: float = 1.0
        batch_size: int = 12

    @dataclasses.dataclass(frozen=True)
    class TwoStage(LabSettings):
        stage1: Stage = Stage()
        stage2: Stage = Stage(lr=0.001, batch_size=8)

    table = {p: TwoStage(p) for p in PROFILE_NAMES}
    chosen = choose(table, "full", {"stage1": {"lr": 0.5}})
    assert chosen.stage1 == Stage(lr=0.5, batch_size=12) and chosen.stage2 == table["full"].stage2
    assert choose(table, "full", {"stage2": Stage(lr=2.0)}).stage2 == Stage(lr=2.0)
    with pytest.raises(ValueError, match=r"unknown settings \['momentum'\] in 'stage1'"):
        choose(table, "full", {"stage1": {"momentum": 0.9}})


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"training": {"num_epochs": "3"}}, "num_epochs='3' should be int, not str"),
        ({"training": {"num_epochs": 2.0}}, "num_epochs=2.0 should be int, not float"),
        ({"training": {"batch_size": True}}, "batch_size=True should be int, not bool"),
        ({"train_per_class": "all"}, "train_per_class='all' should be int or None, not str"),
        ({"training": {"lr": None}}, "lr=None should be float, not NoneType"),
        ({"training": None}, "training=None should be Recipe, not NoneType"),
    ],
)
def test_a_mistyped_override_fails_in_the_first_cell(override, message) -> None:
    with pytest.raises(TypeError, match=re.escape(message)):
        densenet_resnext.settings("cpu", **override)


def test_right_types_pass_and_an_int_rate_is_a_float() -> None:
    chosen = densenet_resnext.settings(
        "cpu", training={"lr": 1, "num_epochs": 3}, train_per_class=None
    )
    assert (chosen.training.lr, chosen.train_per_class, chosen.training.num_epochs) == (1, None, 3)
    with pytest.raises(ValueError, match=r"unknown schedule 'linear'"):
        densenet_resnext.settings("cpu", training={"schedule": "linear"})
