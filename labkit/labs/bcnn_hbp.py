"""Lab 04, bilinear pooling: its settings for each profile and its two-stage recipe.

The HBP recipe: VGG-16 with ImageNet weights, 448 x 448 crops of images resized to a short side
of 512. Stage 1 trains the new head with the backbone frozen (SGD, lr 1.0, effective batch 48 as
12 x 4 accumulated), stage 2 fine-tunes everything (lr 0.001, effective batch 16 as 8 x 2): the
rates and batches of the HBP authors' released Caffe solvers (ChaojianYu/Hierarchical-Bilinear-
Pooling, `ft_last_layer.solver` and `ft_all.solver`, with `iter_size` 4 and 2; weight decays
5e-6 and 5e-4). Handout 000's code sets lr 0.1 with batch 6 for stage 1 (above 8 its GPU ran
out of memory) and 0.001 with batch 4 for stage 2, which it had not run. Stage 1's weight
decay (1e-8) is the handout's, stage 2's (1e-5) that of the PyTorch BCNN code
(HaoMood/bilinear-cnn) the handout's HBP code descends from; the schedule is the handout's (the
rate /10 after more than 3 epochs without a better validation accuracy, `Recipe`), where the
authors' solvers step theirs at fixed iterations. `full` keeps all of that. Without ImageNet
weights on disk the backbone is first pretrained by labkit on synthetic source-task species,
disjoint from the lab's (cached in the lab's runs folder), so that stage 1 still trains a head
on features learnt elsewhere.
`cpu` and `smoke` use a narrow VGG with batch norm at 96 and 48 px.

The plateau scheduler, early stopping and the choice of the best epoch all watch a validation
split carved from the training set (`labkit.data.carve_validation`), never the test set.

Used in: 04_bcnn_hbp, and `labkit bcnn-hbp` / `torchrun -m labkit.labs.bcnn_hbp` for instructors.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader

from labkit.bilinear.heads import HBP, BilinearCNN, GAPNet, HBPHead
from labkit.config import seed_everything, shown_path
from labkit.data.birds import carve_validation
from labkit.data.datasets import LabData
from labkit.labs.birds import (
    SOURCE_BIRDS,
    SYNTHETIC_BIRDS,
    BirdsSettings,
    load_lab_birds,
    load_lab_source,
    train_stage,
)
from labkit.labs.pretraining import BACKBONES, pretrained_backbone
from labkit.labs.pretraining import new_backbone as _new_backbone
from labkit.labs.session import Lab, LabEntry
from labkit.labs.settings import shown
from labkit.models.backbones import TapBackbone
from labkit.models.summary import count_parameters
from labkit.plots import plot_bird_grid, plot_history
from labkit.report import show_headline
from labkit.training import distributed
from labkit.training.loop import evaluate
from labkit.training.memory import per_image_bytes, step_memory
from labkit.training.recipe import Recipe

__all__ = [  # what 04_bcnn_hbp uses, and nothing else
    "HBPHead",
    "MODELS",
    "build_model",
    "count_parameters",
    "load_lab_birds",
    "new_backbone",
    "plot_bird_grid",
    "plot_history",
    "settings",
    "show_headline",
    "start",
    "step_memory",
    "train_and_compare",
]

LAB = "04_bcnn_hbp"
TEACHES = "bilinear pooling: BCNN and HBP against global average pooling, in two stages"
MODELS = ("gap", "bcnn", "hbp")


@dataclass(frozen=True)
class Settings(BirdsSettings):
    """Every size and rate lab 04 uses."""

    backbone: str = field(default="vgg16", metadata=shown("{} backbone"))  # one of BACKBONES
    width: int = 32  # small_vgg: channels of its first block (then 2x, 4x, 8x)
    hbp_d: int = field(default=8192, metadata=shown("HBP d {}"))  # projection channels
    val_fraction: float = 0.1  # of each class's training images, for schedules and stopping
    imagenet_weights: str | None = None  # VGG-16 weights file; None: torchvision's cache
    # pretraining on the source species without ImageNet weights (`labkit.labs.pretraining`)
    pretrain: Recipe = Recipe(num_epochs=30, batch_size=32, lr=0.05, weight_decay=5e-4,
                              schedule="cosine", label_smoothing=0.1,
                              restore_best=True)  # fmt: skip
    # stage 1 (the head) and stage 2 (everything): the rate /10 after 3 epochs without a better
    # validation accuracy, early stopping, the best validation epoch kept
    stage1: Recipe = Recipe(num_epochs=40, batch_size=12, accum_steps=4, lr=1.0,
                            weight_decay=1e-8, schedule="plateau", patience=8,
                            restore_best=True)  # fmt: skip
    stage2: Recipe = Recipe(num_epochs=25, batch_size=8, accum_steps=2, lr=1e-3,
                            weight_decay=1e-5, schedule="plateau", patience=6,
                            restore_best=True)  # fmt: skip

    def __post_init__(self) -> None:
        """Check field types (see `LabSettings`) and the backbone's name."""
        super().__post_init__()
        if self.backbone not in BACKBONES:
            raise ValueError(f"unknown backbone {self.backbone!r}; choose one of {BACKBONES}")

    def memory_needs(self, device: torch.device) -> dict[str, tuple[float, float]]:
        """(fixed bytes, bytes per image) of stages 1 and 2 of HBP, the largest of the three
        models, at the settings' crop on `device`: two measured steps each
        (`labkit.training.memory.per_image_bytes`), plus SGD's momentum of the trained
        weights; for 200 classes, CUB's."""
        layout = torch.channels_last if device.type == "cuda" else torch.preserve_format
        model = build_model("hbp", new_backbone(self), self, 200).to(device, memory_format=layout)
        images = torch.randn(2, 3, self.crop, self.crop, device=device)
        labels = torch.zeros(2, dtype=torch.long, device=device)
        needs = {}
        for name, frozen in (("stage1", True), ("stage2", False)):
            model.set_frozen(frozen)
            fixed, per_image = per_image_bytes(model, images, labels)
            momentum = sum(p.numel() * p.element_size() for p in model.parameters()
                           if p.requires_grad)  # fmt: skip
            needs[name] = (fixed + momentum, per_image)
        del model
        return needs


PROFILES = {
    "full": Settings(
        profile="full", resize=512, crop=448,
        synthetic=SYNTHETIC_BIRDS["full"], source=SOURCE_BIRDS["full"],
    ),
    "cpu": Settings(
        profile="cpu", backbone="small_vgg", width=24, resize=112, crop=96, hbp_d=2048,
        synthetic=SYNTHETIC_BIRDS["cpu"], source=SOURCE_BIRDS["cpu"],
        pretrain=Recipe(num_epochs=20, batch_size=32, lr=0.05, weight_decay=5e-4,
                        schedule="cosine", label_smoothing=0.1, restore_best=True),
        stage1=Recipe(num_epochs=10, batch_size=32, lr=1.0, weight_decay=1e-8,
                      schedule="plateau", patience=4, restore_best=True),
        stage2=Recipe(num_epochs=8, batch_size=16, accum_steps=2, lr=0.01, weight_decay=1e-5,
                      schedule="plateau", patience=4, restore_best=True),
    ),
    "smoke": Settings(
        profile="smoke", backbone="small_vgg", width=8, resize=56, crop=48, hbp_d=64,
        synthetic=SYNTHETIC_BIRDS["smoke"], source=SOURCE_BIRDS["smoke"], val_fraction=0.2,
        pretrain=Recipe(num_epochs=1, batch_size=8, lr=0.05, weight_decay=5e-4,
                        schedule="cosine", restore_best=True),
        stage1=Recipe(num_epochs=1, batch_size=4, accum_steps=2, lr=1.0, weight_decay=1e-8,
                      schedule="plateau", restore_best=True),
        stage2=Recipe(num_epochs=1, batch_size=4, accum_steps=2, lr=0.01, weight_decay=1e-5,
                      schedule="plateau", restore_best=True),
    ),
}  # fmt: skip


ENTRY = LabEntry(LAB, TEACHES, PROFILES)
settings, start = ENTRY.settings, ENTRY.start  # settings("cpu", hbp_d=1024); lab = start()


def new_backbone(settings: Settings) -> TapBackbone:
    """A randomly initialised backbone of the settings' kind and width."""
    return _new_backbone(settings.backbone, settings.width)


def build_model(
    kind: str, backbone: TapBackbone, settings: Settings, num_classes: int
) -> nn.Module:
    """ "gap", "bcnn" or "hbp" on `backbone` (used as it is, not copied).

    Raises ValueError naming the known kinds for another one.
    """
    if kind == "gap":
        return GAPNet(backbone, num_classes)
    if kind == "bcnn":
        return BilinearCNN(backbone, num_classes)
    if kind == "hbp":
        return HBP(backbone, settings.hbp_d, num_classes)
    raise ValueError(f"unknown model {kind!r}; choose one of {MODELS}")


def score_on_test(model: nn.Module, data: LabData, settings: Settings) -> float:
    """Top-1 accuracy of `model` on the test split (centre crops)."""
    loader = DataLoader(data.test, batch_size=settings.eval_batch_size)
    return float(evaluate(model, loader, topk=(1,))["top1"])


class Comparison(NamedTuple):
    """What `train_and_compare` returns: the table, and every stage's history."""

    table: pd.DataFrame  # one row per model
    histories: dict[str, dict[str, pd.DataFrame]]  # model -> {"stage 1", "stage 2"} -> history


def train_and_compare(
    lab: Lab[Settings],
    models: tuple[str, ...] = MODELS,
    *,
    root: str | os.PathLike | None = None,
    progress: bool = True,
) -> Comparison:
    """The lab's whole recipe: the backbone (ImageNet weights, or pretrained once on the source
    species), then for each model stage 1 (head only) and stage 2 (everything) on the birds
    with a validation split carved from training; each stage checkpointed under the lab's runs
    folder, so a second call only loads.

    Returns the table, one row per model: test accuracy after each stage, parameters,
    activations saved for backward per image in stage 2 (`labkit.training.memory.step_memory` on 2
    images), the step's peak CUDA memory (NaN on a CPU), training seconds; and each model's
    two histories (`labkit.training.loop.fit`'s, one row per epoch), for its training curves. Prints
    the backbone's line; under torchrun every process trains its share and all return the same.
    """
    s = lab.settings
    if distributed.is_main():  # written once, before the other processes read them
        load_lab_birds(s, root=root, verbose=False)
        load_lab_source(s, root=root, verbose=False)
    distributed.barrier()
    pretrained = pretrained_backbone(
        s.backbone, s.width, s, s.pretrain, runs_dir=lab.run_dir("source_backbone"),
        imagenet_weights=s.imagenet_weights, val_fraction=s.val_fraction, device=lab.device,
        root=root, progress=progress,
    )  # fmt: skip
    if distributed.is_main():
        print(pretrained.line)
    data = load_lab_birds(s, root=root, verbose=distributed.is_main())
    train, val = carve_validation(data.train, s.val_fraction)
    rows, histories = [], {}
    for kind in models:
        seed_everything(lab.seed)
        model = build_model(kind, copy.deepcopy(pretrained.model), s, data.num_classes)
        # channels-last is the layout cuDNN convolves fastest; the CPU path keeps the default
        layout = torch.channels_last if lab.device.type == "cuda" else torch.preserve_format
        model = model.to(lab.device, memory_format=layout)
        model.set_frozen(True)  # stage 1: the head alone, the backbone without autograd
        first = train_stage(model, s.stage1, train, val, s, runs_dir=lab.run_dir(f"{kind}_stage1"),
                            run_info={"frozen": True, "backbone": pretrained.origin},
                            progress=progress, desc=f"{kind} stage 1")  # fmt: skip
        after_first = score_on_test(model, data, s)
        model.set_frozen(False)  # stage 2: everything
        second = train_stage(model, s.stage2, train, val, s,
                             runs_dir=lab.run_dir(f"{kind}_stage2"),
                             run_info={"frozen": False, "after": first.attrs["run_dir"].name},
                             progress=progress, desc=f"{kind} stage 2")  # fmt: skip
        images = torch.stack([data.train[i][0] for i in range(2)]).to(lab.device)
        labels = torch.tensor([data.train[i][1] for i in range(2)], device=lab.device)
        memory = step_memory(model, images, labels)
        histories[kind] = {"stage 1": first, "stage 2": second}
        rows.append({
            "model": kind,
            "test acc after stage 1": after_first,
            "test acc": score_on_test(model, data, s),
            "parameters": count_parameters(model),
            "activations per image (MiB)": memory["activations"] / 2 / 2**20,
            "peak CUDA memory, 2 images (MiB)": (memory["peak_cuda"] or float("nan")) / 2**20,
            "training (s)": float(first["seconds"].sum() + second["seconds"].sum()),
        })  # fmt: skip
    return Comparison(pd.DataFrame(rows).set_index("model"), histories)


def main(argv: list[str] | None = None) -> int:
    """Instructors: the lab's recipe from the command line, on one process or under torchrun
    (`torchrun --nproc_per_node=K -m labkit.labs.bcnn_hbp --profile full`): DDP with a
    distributed sampler, rank 0 alone printing and writing checkpoints; an interrupted run
    resumes where its checkpoints stop. Prints the table and writes it as CSV."""
    import argparse
    import contextlib
    import io

    parser = argparse.ArgumentParser(prog="labkit.labs.bcnn_hbp", description=main.__doc__)
    parser.add_argument("--profile", choices=sorted(PROFILES), default=None)
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument(
        "--csv", type=Path, default=None, help="default: <runs>/04_bcnn_hbp/<profile>/table.csv"
    )
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    distributed.init_from_env()
    quiet = (
        contextlib.nullcontext()
        if distributed.is_main()
        else contextlib.redirect_stdout(io.StringIO())
    )
    with quiet:
        lab = start(args.profile)
        table = train_and_compare(lab, tuple(args.models), progress=not args.no_progress).table
    if distributed.is_main():
        print(table.to_string(float_format=lambda v: f"{v:.4g}"))
        out = args.csv or lab.run_dir("") / "table.csv"
        out.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(out)
        print(f"table: {shown_path(out)}")
    if distributed.active():
        torch.distributed.destroy_process_group()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
