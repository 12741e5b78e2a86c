"""fit under torchrun: two CPU processes (gloo) end with the same weights, equal to one process
on the same global batches, also after an interruption and a resume; rank 0 alone writes; a
validation set that the sampler pads counts every sample once, with 2 and 3 processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from labkit.training import distributed

WORKER = Path(__file__).with_name("ddp_worker.py")
pytestmark = pytest.mark.kernel  # torchrun starts the processes (the last test alone runs none)


def _run(launcher: list[str], out: Path, *options: str) -> None:
    out.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    argv = [*launcher, str(WORKER), str(out), *options]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("ddp")
    _run([sys.executable], root / "single")
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    # stopped after epoch 2, then resumed; then a padded validation set (below)
    _run(torchrun, root / "ddp", "--interrupt", "2", "--evaluate")
    return root / "single", root / "ddp"


def test_both_ranks_end_equal_to_one_process(runs) -> None:
    single, ddp = runs
    reference = torch.load(single / "weights-rank0.pt")
    ranks = [torch.load(ddp / f"weights-rank{r}.pt") for r in (0, 1)]
    for name, value in reference.items():
        assert torch.equal(ranks[0][name], ranks[1][name]), name
        torch.testing.assert_close(ranks[0][name], value, rtol=1e-5, atol=1e-6)
    assert not torch.equal(reference["0.weight"], _initial_weight())  # it did train


def _initial_weight() -> torch.Tensor:
    torch.manual_seed(1)
    return torch.nn.Conv2d(2, 4, 3).weight.detach()


def test_every_rank_sees_the_whole_epochs_metrics(runs) -> None:
    single, ddp = runs
    columns = ["epoch", "train_loss", "val_loss", "val_acc"]
    expected = pd.read_csv(single / "history-rank0.csv")[columns]
    for rank in (0, 1):
        got = pd.read_csv(ddp / f"history-rank{rank}.csv")[columns]
        pd.testing.assert_frame_equal(got, expected, rtol=1e-5)
    assert list(expected["epoch"]) == [1, 2, 3]


def test_rank_zero_alone_wrote_plain_checkpoints(runs) -> None:
    _, ddp = runs
    state = torch.load(ddp / "run" / "last.pt", weights_only=False)
    assert state["epoch"] == 3
    assert all(not key.startswith("module.") for key in state["model"])
    assert sorted(p.name for p in (ddp / "run").iterdir()) == [
        "best.pt",
        "last.pt",
        "settings.json",
    ]


@pytest.mark.parametrize("processes", [2, 3])
def test_padded_validation_counts_every_sample_once(processes: int, runs, tmp_path: Path) -> None:
    # 7 samples: DistributedSampler repeats the first 1 (2 processes) or 2 (3 processes) to give
    # every process as many; the loss and accuracy must be those of the 7 samples in one process
    out = runs[1]
    if processes != 2:
        out = tmp_path / "out"
        torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
        _run([*torchrun, f"--nproc_per_node={processes}"], out, "--evaluate-only")
    for rank in range(processes):
        result = json.loads((out / f"evaluation-rank{rank}.json").read_text())
        for call in ("evaluate", "fit"):
            found, want = result["found"][call], result["reference"][call]
            assert found == pytest.approx(want, rel=1e-6), (rank, call)
        assert 0 < result["reference"]["evaluate"]["top1"] < 1  # duplicates would move it


def test_outside_torchrun_nothing_changes() -> None:
    model = torch.nn.Linear(2, 2)
    assert distributed.wrap(model) is model and distributed.unwrap(model) is model
    assert distributed.rank() == 0 and distributed.is_main() and not distributed.active()
    assert distributed.sum_over_processes([1.0, 2.0], torch.device("cpu")) == [1.0, 2.0]
    assert distributed.init_from_env() is False or "WORLD_SIZE" in os.environ
