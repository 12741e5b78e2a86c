"""A tiny model trained through `labkit.training.loop.fit`, under torchrun or alone.

Used by tests/training/test_distributed.py.

Usage: python -m torch.distributed.run --standalone --nproc_per_node=2 \
           tests/training/ddp_worker.py OUT
       python tests/training/ddp_worker.py OUT   (one process, batch 8: the reference)
Writes OUT/weights-rank<r>.pt (final weights) and OUT/history-rank<r>.csv of each process.
With `--interrupt 2` the run stops at the end of epoch 2 (as a dropped kernel would), and a
fresh model and optimizer then resume from the checkpoint in OUT/run up to the last epoch.
With `--evaluate` it then scores a validation set of VAL_SIZE samples (which the sampler pads to a
multiple of the processes) by `evaluate` and by a one-epoch `fit`, and writes
OUT/evaluation-rank<r>.json with the numbers every process got and its own count over the
whole set in one process (the reference); `--evaluate-only` does only that.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from labkit.training import distributed  # noqa: E402
from labkit.training.callbacks import Checkpoints  # noqa: E402
from labkit.training.loop import evaluate, fit  # noqa: E402
from labkit.training.recipe import Recipe  # noqa: E402
from labkit.training.steps import Task  # noqa: E402

GLOBAL_BATCH = 8
EPOCHS = 3
VAL_SIZE = 7  # padded to 8 by 2 processes, to 9 by 3


class Interrupted(Exception):
    """Raised at the end of the chosen epoch."""


class StoppingLoss(nn.CrossEntropyLoss):
    """Cross-entropy that raises Interrupted at the end of epoch `stop_at` (0: never)."""

    stop_at = 0  # a class attribute: not part of the run's recorded settings
    epochs = 0

    def on_train_epoch_end(self) -> None:
        StoppingLoss.epochs += 1
        if StoppingLoss.epochs == StoppingLoss.stop_at:
            raise Interrupted


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--interrupt", type=int, default=0)
    parser.add_argument("--evaluate", action="store_true")
    parser.add_argument("--evaluate-only", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    in_group = distributed.init_from_env()
    if not args.evaluate_only:
        train(args.out, args.interrupt, in_group)
    if args.evaluate or args.evaluate_only:
        evaluate_padded(args.out)
    if in_group:
        torch.distributed.destroy_process_group()


def train(out: Path, interrupt: int, in_group: bool) -> None:
    """Three epochs of fit, stopped after epoch `interrupt` and resumed (0: not stopped)."""
    world = torch.distributed.get_world_size() if in_group else 1
    g = torch.Generator().manual_seed(0)
    x = torch.randn(32, 2, 6, 6, generator=g)
    y = torch.randint(0, 3, (32,), generator=g)
    data = TensorDataset(x, y)
    if in_group:  # each process half of every global batch, reshuffled each epoch
        sampler = DistributedSampler(data, shuffle=True, seed=5)
        train_loader = DataLoader(data, batch_size=GLOBAL_BATCH // world, sampler=sampler)
        val_loader = train_loader  # each process scores its half; fit sums them
    else:  # the same global batches in the same order, in one process
        sampler = MergedOrder(len(data), world=2, seed=5)
        train_loader = DataLoader(data, batch_size=GLOBAL_BATCH, sampler=sampler)
        val_loader = DataLoader(data, batch_size=GLOBAL_BATCH)
    StoppingLoss.stop_at = interrupt
    for attempt in ("first", "resumed") if interrupt else ("first",):
        torch.manual_seed(1 if attempt == "first" else 2)  # a resume starts from other weights
        model = nn.Sequential(nn.Conv2d(2, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(64, 3))
        checkpoints = Checkpoints(out / "run", resume=attempt == "resumed")
        try:
            history = fit(
                distributed.wrap(model),
                (train_loader, val_loader),
                Recipe(num_epochs=EPOCHS, lr=0.1, momentum=0.9),
                task=Task(loss_fn=StoppingLoss()),
                callbacks=[checkpoints],
            )
        except Interrupted:
            print(f"interrupted at the end of epoch {interrupt}")
    rank = distributed.rank()
    torch.save(model.state_dict(), out / f"weights-rank{rank}.pt")
    history.to_csv(out / f"history-rank{rank}.csv", index=False)


def evaluate_padded(out: Path) -> None:
    """Score VAL_SIZE samples split over the processes by `evaluate` and by `fit`'s validation,
    and, in each process alone, over the whole set at once."""
    g = torch.Generator().manual_seed(3)
    x, y = (
        torch.randn(VAL_SIZE, 2, 6, 6, generator=g),
        torch.randint(0, 3, (VAL_SIZE,), generator=g),
    )
    train_set = TensorDataset(
        torch.randn(12, 2, 6, 6, generator=g), torch.randint(0, 3, (12,), generator=g)
    )
    val = TensorDataset(x, y)
    val_loader = DataLoader(val, batch_size=2, sampler=DistributedSampler(val, shuffle=False))
    train_loader = DataLoader(train_set, batch_size=2, sampler=DistributedSampler(train_set))
    torch.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(2, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(64, 3))
    found = {"evaluate": evaluate(distributed.wrap(model), val_loader, topk=(1,))}
    reference = {"evaluate": _whole_set(model, x, y)}
    history = fit(distributed.wrap(model), (train_loader, val_loader), Recipe(num_epochs=1, lr=0.1))
    found["fit"] = {"loss": history["val_loss"].iloc[0], "top1": history["val_acc"].iloc[0]}
    reference["fit"] = _whole_set(model, x, y)
    rank = distributed.rank()
    text = json.dumps({"found": found, "reference": reference})
    (out / f"evaluation-rank{rank}.json").write_text(text)


def _whole_set(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    with torch.no_grad():
        logits = model.eval()(x)
    model.train()
    loss = nn.functional.cross_entropy(logits, y).item()
    return {"loss": loss, "top1": (logits.argmax(1) == y).double().mean().item()}


class MergedOrder(torch.utils.data.Sampler):
    """The order in which `world` DistributedSamplers (shuffled, `seed`) hand out samples,
    their batches merged into global batches; epoch 1 first, then 2, ... (as fit's set_epoch)."""

    def __init__(self, n: int, world: int, seed: int) -> None:
        self.n, self.world, self.seed, self.epoch = n, world, seed, 1

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        perm = torch.randperm(self.n, generator=g).tolist()
        per_rank = [perm[r :: self.world] for r in range(self.world)]
        size = GLOBAL_BATCH // self.world
        self.epoch += 1
        for start in range(0, len(per_rank[0]), size):
            for r in range(self.world):
                yield from per_rank[r][start : start + size]


if __name__ == "__main__":
    main()
