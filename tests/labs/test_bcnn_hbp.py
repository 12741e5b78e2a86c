"""Lab 04's module: settings per profile, models by name, the validation split, the two stages
through fit on the smoke profile's synthetic birds (pretraining runs once), the histories the
recipe returns, and what the HBP heads keep for backward (the notebook's memory arithmetic)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from labkit.bilinear.heads import HBPHead
from labkit.data.birds import carve_validation
from labkit.labs import bcnn_hbp as l4
from labkit.labs.birds import load_lab_birds, train_stage
from labkit.labs.pretraining import new_backbone


def test_profiles_keep_the_authors_recipe_in_full() -> None:
    full = l4.settings("full")
    assert (full.backbone, full.resize, full.crop, full.hbp_d) == ("vgg16", 512, 448, 8192)
    assert (full.stage1.batch_size, full.stage1.accum_steps, full.stage1.lr) == (12, 4, 1.0)
    assert (full.stage2.effective_batch, full.stage2.lr) == (16, 1e-3)
    assert l4.settings("cpu").backbone == "small_vgg"
    with pytest.raises(ValueError, match="unknown backbone 'resnet'"):
        l4.settings("cpu", backbone="resnet")


def test_models_by_name() -> None:
    s = l4.settings("smoke")
    for kind in l4.MODELS:
        model = l4.build_model(kind, l4.new_backbone(s), s, num_classes=3)
        assert type(model).__name__ in ("GAPNet", "BilinearCNN", "HBP")
    with pytest.raises(ValueError, match="unknown model 'vgg'; choose one of"):
        l4.build_model("vgg", l4.new_backbone(s), s, 3)


def test_validation_is_carved_from_training_by_class(tmp_path: Path) -> None:
    s = l4.settings("smoke")
    data = load_lab_birds(s, root=tmp_path, verbose=False)
    train, val = carve_validation(data.train, 0.34, seed=0)
    assert len(train) + len(val) == len(data.train)
    assert set(train.rows).isdisjoint(val.rows)
    assert not set(val.rows) & set(data.test.rows)  # never the test set
    assert sorted(np.unique(val.labels)) == list(range(data.num_classes))
    assert train.transform.train and not val.transform.train


def test_two_stages_run_and_a_second_call_loads(tmp_path: Path, capsys) -> None:
    s = l4.settings("smoke")
    runs = tmp_path / "runs"
    backbone = new_backbone(s.backbone, s.width)
    data = load_lab_birds(s, root=tmp_path, verbose=False)
    train, val = carve_validation(data.train, s.val_fraction)
    model = l4.build_model("hbp", backbone, s, data.num_classes)
    frozen_before = [p.detach().clone() for p in model.backbone.parameters()]
    model.set_frozen(True)
    h1 = train_stage(model, s.stage1, train, val, s, runs_dir=runs / "one", progress=False)
    assert all(
        (a == b).all() for a, b in zip(frozen_before, model.backbone.parameters(), strict=True)
    )  # stage 1 leaves the backbone as it was
    model.set_frozen(False)
    h2 = train_stage(model, s.stage2, train, val, s, runs_dir=runs / "two",
                     run_info={"after": h1.attrs["run_dir"].name}, progress=False)  # fmt: skip
    assert any(
        not (a == b).all() for a, b in zip(frozen_before, model.backbone.parameters(), strict=True)
    )  # stage 2 fine-tunes it
    assert 0 <= l4.score_on_test(model, data, s) <= 1
    assert len(h2) == s.stage2.num_epochs
    capsys.readouterr()
    again = train_stage(model, s.stage2, train, val, s, runs_dir=runs / "two",
                        run_info={"after": h1.attrs["run_dir"].name}, progress=False)  # fmt: skip
    assert "finished earlier" in capsys.readouterr().out  # a finished stage only loads
    assert again["seconds"].tolist() == h2["seconds"].tolist()


def test_command_line_recipe_prints_and_writes_the_table(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("LABKIT_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("LABKIT_RUNS", str(tmp_path / "runs"))
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    out = tmp_path / "table.csv"
    assert l4.main(["--profile", "smoke", "--models", "gap", "hbp", "--csv", str(out),
                    "--no-progress"]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert "backbone: small_vgg pretrained by labkit" in printed and "table:" in printed
    table = pd.read_csv(out, index_col="model")
    assert list(table.index) == ["gap", "hbp"]
    assert {"test acc", "test acc after stage 1", "parameters"} <= set(table.columns)
    assert (table["parameters"] > 0).all()
    assert table.loc["hbp", "activations per image (MiB)"] > 0


def test_train_and_compare_keeps_every_stage_history(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("LABKIT_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("LABKIT_RUNS", str(tmp_path / "runs"))
    lab = l4.start("smoke")
    table, histories = l4.train_and_compare(lab, ("gap",), progress=False)
    capsys.readouterr()
    assert list(table.index) == ["gap"] and list(histories) == ["gap"]
    for stage, settings in (("stage 1", lab.settings.stage1), ("stage 2", lab.settings.stage2)):
        history = histories["gap"][stage]
        assert {"epoch", "train_loss", "val_acc", "seconds"} <= set(history.columns)
        assert 1 <= len(history) <= settings.num_epochs
    total = sum(h["seconds"].sum() for h in histories["gap"].values())
    assert table.loc["gap", "training (s)"] == pytest.approx(total)


def _saved_per_image(head: nn.Module, maps: list[torch.Tensor]) -> Counter:
    """Shapes of the tensors autograd saves for backward in `head(maps)`, parameters excluded,
    each distinct storage once (as `labkit.training.memory.step_memory` counts them)."""
    params = {p.untyped_storage().data_ptr() for p in head.parameters()}
    saved: dict[int, tuple] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        pointer = tensor.untyped_storage().data_ptr()
        if pointer not in params:
            saved[pointer] = tuple(tensor.shape)
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        head(maps).sum().backward()
    return Counter(saved.values())


class _HandoutHead(nn.Module):
    """The handout's HBP head (seed 000): each interaction projects both its maps again with
    the 1x1 convolutions, multiplies them and sums over locations."""

    def __init__(self, head: HBPHead) -> None:
        super().__init__()
        self.projections, self.fc = head.projections, head.fc

    def forward(self, maps: list[torch.Tensor]) -> torch.Tensor:
        p, outs = self.projections, []
        for a, b in ((0, 1), (0, 2), (1, 2)):
            x = p[a](maps[a]) * p[b](maps[b])
            x = torch.sum(x.view(x.size(0), x.size(1), -1), dim=2)
            outs.append(F.normalize(torch.sign(x) * torch.sqrt(torch.abs(x) + 1e-5)))
        return self.fc(torch.cat(outs, dim=1))


def test_the_handouts_hbp_head_keeps_six_projections_and_no_product() -> None:
    """Lab 04's memory arithmetic (section 5): autograd keeps each product's two factors, the
    six projections, and nothing for the sums over locations, so no product; labkit's head
    keeps its three input maps and nothing of size d x H x W."""
    c, d, h, w = 8, 32, 5, 4
    head = HBPHead((c, c, c), d, num_classes=3)
    maps = [torch.randn(2, c, h, w).relu() for _ in range(3)]  # stage 1: no gradient for the maps
    handout = _saved_per_image(_HandoutHead(head), maps)
    assert handout[(2, d, h, w)] == 6  # the six projections
    assert handout[(2, c, h, w)] == 3  # the maps, the convolutions' inputs
    assert sum(n for shape, n in handout.items() if shape == (2, d, h, w)) == 6  # no product
    labkit = _saved_per_image(head, maps)
    assert labkit[(2, c, h, w)] == 3 and (2, d, h, w) not in labkit
    assert not any(len(shape) == 3 and shape[-1] == h * w for shape in labkit)  # nor (N, d, L)
