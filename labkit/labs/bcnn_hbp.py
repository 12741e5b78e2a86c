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
rate /10 after more than 3 epochs without a better validation accuracy, `Stage`), where the
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
from typing import Any, NamedTuple

import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from labkit.bilinear.heads import HBP, BilinearCNN, GAPNet
from labkit.config import seed_everything, shown_path
from labkit.data.birds import carve_validation
from labkit.data.datasets import LabData
from labkit.labs.birds import SOURCE_BIRDS, SYNTHETIC_BIRDS, BirdsSettings, load_lab_source
from labkit.labs.session import Lab, start_lab
from labkit.labs.settings import choose, shown
from labkit.models.backbones import (
    TapBackbone,
    find_imagenet_weights,
    small_vgg_backbone,
    vgg16_backbone,
)
from labkit.training import distributed
from labkit.training.loop import evaluate
from labkit.training.recipe import Stage, fit_stage

__all__ = [
    "Comparison",
    "LAB",
    "MODELS",
    "PROFILES",
    "Settings",
    "Stage",
    "build_model",
    "new_backbone",
    "pretrained_backbone",
    "score_on_test",
    "settings",
    "start",
    "train_and_compare",
    "train_stage",
]

LAB = "04_bcnn_hbp"
TEACHES = "bilinear pooling: BCNN and HBP against global average pooling, in two stages"
MODELS = ("gap", "bcnn", "hbp")
BACKBONES = ("vgg16", "small_vgg")


@dataclass(frozen=True)
class Settings(BirdsSettings):
    """Every size and rate lab 04 uses."""

    backbone: str = field(default="vgg16", metadata=shown("{} backbone"))  # one of BACKBONES
    width: int = 32  # small_vgg: channels of its first block (then 2x, 4x, 8x)
    hbp_d: int = field(default=8192, metadata=shown("HBP d {}"))  # projection channels
    val_fraction: float = 0.1  # of each class's training images, for schedules and stopping
    imagenet_weights: str | None = None  # VGG-16 weights file; None: torchvision's cache
    pretrain: Stage = Stage(num_epochs=30, batch_size=32, accum_steps=1, lr=0.05,
                            weight_decay=5e-4, schedule="cosine",
                            label_smoothing=0.1)  # fmt: skip
    stage1: Stage = Stage(num_epochs=40, batch_size=12, accum_steps=4, lr=1.0,
                          weight_decay=1e-8, patience=8)  # fmt: skip
    stage2: Stage = Stage(num_epochs=25, batch_size=8, accum_steps=2, lr=1e-3,
                          weight_decay=1e-5, patience=6)  # fmt: skip

    def __post_init__(self) -> None:
        """Check field types (see `LabSettings`) and the backbone's name."""
        super().__post_init__()
        if self.backbone not in BACKBONES:
            raise ValueError(f"unknown backbone {self.backbone!r}; choose one of {BACKBONES}")


PROFILES = {
    "full": Settings(
        profile="full", resize=512, crop=448,
        synthetic=SYNTHETIC_BIRDS["full"], source=SOURCE_BIRDS["full"],
    ),
    "cpu": Settings(
        profile="cpu", backbone="small_vgg", width=24, resize=112, crop=96, hbp_d=2048,
        synthetic=SYNTHETIC_BIRDS["cpu"], source=SOURCE_BIRDS["cpu"],
        pretrain=Stage(num_epochs=20, batch_size=32, accum_steps=1, lr=0.05, weight_decay=5e-4,
                       schedule="cosine", label_smoothing=0.1),
        stage1=Stage(num_epochs=10, batch_size=32, accum_steps=1, lr=1.0, weight_decay=1e-8,
                     patience=4),
        stage2=Stage(num_epochs=8, batch_size=16, accum_steps=2, lr=0.01, weight_decay=1e-5,
                     patience=4),
    ),
    "smoke": Settings(
        profile="smoke", backbone="small_vgg", width=8, resize=56, crop=48, hbp_d=64,
        synthetic=SYNTHETIC_BIRDS["smoke"], source=SOURCE_BIRDS["smoke"], val_fraction=0.2,
        pretrain=Stage(num_epochs=1, batch_size=8, accum_steps=1, lr=0.05, weight_decay=5e-4,
                       schedule="cosine"),
        stage1=Stage(num_epochs=1, batch_size=4, accum_steps=2, lr=1.0, weight_decay=1e-8),
        stage2=Stage(num_epochs=1, batch_size=4, accum_steps=2, lr=0.01, weight_decay=1e-5),
    ),
}  # fmt: skip


def settings(profile: str | None = None, **overrides: Any) -> Settings:
    """Lab 04's settings for `profile` (default: chosen as `labkit.config.profile_name`), with
    single fields overridden, e.g. `settings("cpu", hbp_d=1024)`."""
    return choose(PROFILES, profile, overrides)


def start(profile: str | None = None, *, seed: int = 0, **overrides: Any) -> Lab:
    """The first cell of lab 04: seed, choose settings and device, print one line each."""
    return start_lab(LAB, TEACHES, settings(profile, **overrides), seed=seed)


def new_backbone(settings: Settings) -> TapBackbone:
    """A randomly initialised backbone of the settings' kind."""
    if settings.backbone == "vgg16":
        return vgg16_backbone()
    w = settings.width
    return small_vgg_backbone((w, 2 * w, 4 * w, 8 * w))


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


def _loader(dataset: Dataset, batch_size: int, settings: Settings, shuffle: bool, seed: int):
    """A DataLoader; under torchrun each process reads its share (DistributedSampler)."""
    workers = {"num_workers": settings.num_workers, "persistent_workers": settings.num_workers > 0}
    if distributed.active():
        sampler = DistributedSampler(dataset, shuffle=shuffle, seed=seed)
        return DataLoader(dataset, batch_size=batch_size, sampler=sampler, **workers)
    generator = torch.Generator().manual_seed(seed) if shuffle else None
    return DataLoader(
        dataset, batch_size=batch_size, shuffle=shuffle, generator=generator, **workers
    )


def train_stage(
    model: nn.Module,
    stage: Stage,
    train_set: Dataset,
    val_set: Dataset,
    settings: Settings,
    *,
    frozen: bool,
    runs_dir: str | os.PathLike | None = None,
    run_info: dict[str, Any] | None = None,
    seed: int = 0,
    progress: bool = True,
    desc: str | None = None,
) -> pd.DataFrame:
    """One stage through `labkit.training.loop.fit`: stage 1 with `frozen=True` trains the head only
    (the backbone in eval mode, without autograd), stage 2 everything.

    SGD with the stage's rate, momentum and weight decay, its schedule (`Stage`), early
    stopping on `val_set`'s accuracy; the best validation epoch's weights are kept.
    With `runs_dir`, the stage is checkpointed in a folder keyed by its settings: a finished
    stage only loads. Under torchrun the model is wrapped in DistributedDataParallel.
    """
    model.set_frozen(frozen)
    trained = model.head if frozen else model
    return fit_stage(
        distributed.wrap(model),
        stage,
        _loader(train_set, stage.batch_size, settings, shuffle=True, seed=seed),
        _loader(val_set, settings.eval_batch_size, settings, shuffle=False, seed=seed),
        parameters=trained.parameters(),
        runs_dir=runs_dir,
        run_info={"seed": seed, "frozen": frozen, **(run_info or {})},
        progress=progress,
        desc=desc,
    )


class Pretrained(NamedTuple):
    """The backbone stage 1 starts from, as `pretrained_backbone` returns it."""

    backbone: TapBackbone
    line: str  # which backbone it is and what it cost, for people
    origin: str  # what its weights come from, the same on every call: part of stage 1's run key


def pretrained_backbone(
    settings: Settings,
    *,
    device: torch.device | str = "cpu",
    runs_dir: str | os.PathLike | None = None,
    root: str | os.PathLike | None = None,
    progress: bool = True,
) -> Pretrained:
    """The backbone stage 1 starts from, one line saying which it is and what it cost, and its
    origin (the weights file, or labkit's pretraining run), which keys stage 1's checkpoints.

    VGG-16 with ImageNet weights when they are on disk (`settings.imagenet_weights` or
    torchvision's cache). Otherwise the settings' backbone pretrained from scratch, with a GAP
    head, on the source-task species (`load_lab_source`), split into train and validation;
    with `runs_dir` the pretraining runs once and later calls load it.
    """
    if settings.backbone == "vgg16":
        weights = find_imagenet_weights(settings.imagenet_weights)
        if weights is not None:
            line = f"backbone: VGG-16 with ImageNet weights from {shown_path(weights)}"
            origin = f"ImageNet weights {weights.name}, {weights.stat().st_size} bytes"
            return Pretrained(vgg16_backbone(str(weights)).to(device), line, origin)
    source = load_lab_source(settings, root=root, verbose=False)
    train, val = carve_validation(source.train, settings.val_fraction)
    seed_everything(0)
    net = GAPNet(new_backbone(settings), source.num_classes).to(device)
    history = train_stage(net, settings.pretrain, train, val, settings, frozen=False,
                          runs_dir=runs_dir, run_info={"source": settings.source.version},
                          progress=progress, desc="source backbone")  # fmt: skip
    line = (
        f"backbone: {settings.backbone} pretrained by labkit on {source.num_classes} synthetic "
        f"source species, none of them the lab's: {history['val_acc'].max():.1%} on their "
        f"validation images after {history['seconds'].sum():.0f} s of training"
    )
    if settings.backbone == "vgg16":
        line += " (no ImageNet weights in torchvision's cache: they would replace it)"
    run = history.attrs.get("run_dir")  # its name is the digest of the pretraining's settings
    origin = f"labkit pretraining {run.name if run else settings.pretrain}"
    return Pretrained(net.backbone, line, origin)


def score_on_test(model: nn.Module, data: LabData, settings: Settings) -> float:
    """Top-1 accuracy of `model` on the test split (centre crops)."""
    loader = DataLoader(data.test, batch_size=settings.eval_batch_size)
    return float(evaluate(model, loader, topk=(1,))["top1"])


class Comparison(NamedTuple):
    """What `train_and_compare` returns: the table, and every stage's history."""

    table: pd.DataFrame  # one row per model
    histories: dict[str, dict[str, pd.DataFrame]]  # model -> {"stage 1", "stage 2"} -> history


def train_and_compare(
    lab: Lab,
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
    from labkit.labs.birds import load_lab_birds
    from labkit.models.summary import count_parameters
    from labkit.training.memory import step_memory

    s: Settings = lab.settings  # type: ignore[assignment]
    if distributed.is_main():  # written once, before the other processes read them
        load_lab_birds(s, root=root, verbose=False)
        load_lab_source(s, root=root, verbose=False)
    distributed.barrier()
    backbone, line, origin = pretrained_backbone(
        s, device=lab.device, runs_dir=lab.run_dir("source_backbone"), root=root,
        progress=progress,
    )  # fmt: skip
    if distributed.is_main():
        print(line)
    data = load_lab_birds(s, root=root, verbose=distributed.is_main())
    train, val = carve_validation(data.train, s.val_fraction)
    rows, histories = [], {}
    for kind in models:
        seed_everything(lab.seed)
        model = build_model(kind, copy.deepcopy(backbone), s, data.num_classes)
        # channels-last is the layout cuDNN convolves fastest; the CPU path keeps the default
        layout = torch.channels_last if lab.device.type == "cuda" else torch.preserve_format
        model = model.to(lab.device, memory_format=layout)
        first = train_stage(model, s.stage1, train, val, s, frozen=True,
                            runs_dir=lab.run_dir(f"{kind}_stage1"),
                            run_info={"backbone": origin},
                            progress=progress, desc=f"{kind} stage 1")  # fmt: skip
        after_first = score_on_test(model, data, s)
        second = train_stage(model, s.stage2, train, val, s, frozen=False,
                             runs_dir=lab.run_dir(f"{kind}_stage2"),
                             run_info={"after": first.attrs["run_dir"].name},
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
