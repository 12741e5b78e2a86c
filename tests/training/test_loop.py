"""labkit.training.loop: the history table, evaluation, accumulation, AMP choice, stopping."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from labkit.config import seed_everything
from labkit.training.callbacks import Callback, Checkpoints, ProgressBar
from labkit.training.loop import HISTORY_COLUMNS, evaluate, fit
from labkit.training.metrics import accuracy
from labkit.training.recipe import Recipe
from labkit.training.steps import (
    NonFiniteLossError,
    Task,
    amp_settings,
    backward_step,
    optimizer_step,
)


def _data(n: int = 24, num_features: int = 6, num_classes: int = 3, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, num_features, generator=g)
    y = torch.randint(0, num_classes, (n,), generator=g)
    return TensorDataset(x, y)


def _loader(dataset, batch_size: int = 4, shuffle: bool = False) -> DataLoader:
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle)


def _sgd(model: nn.Module, lr: float = 0.1, momentum: float = 0.0) -> torch.optim.SGD:
    return torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)


TASK_FIELDS = ("loss_fn", "metric_fn", "forward_fn", "val_metrics")
FIT_FIELDS = ("optimizer", "scheduler", "callbacks")


def _fit(model, train_loader, val_loader=None, **kwargs):
    """`fit` with a recipe of plain SGD (lr 0.1, no momentum) for one epoch; `kwargs` name
    recipe fields, task fields or fit's own keywords."""
    task = {k: kwargs.pop(k) for k in TASK_FIELDS if k in kwargs}
    own = {k: kwargs.pop(k) for k in FIT_FIELDS if k in kwargs}
    recipe = Recipe(**{"num_epochs": 1, "lr": 0.1, "momentum": 0.0, **kwargs})
    loaders = (train_loader, val_loader) if val_loader is not None else train_loader
    return fit(model, loaders, recipe, task=Task(**task), **own)


# ---------------------------------------------------------------- small parts


def test_amp_settings_cpu_is_off_and_cuda_picks_bf16_or_fp16(monkeypatch):
    cpu = torch.device("cpu")
    assert amp_settings(cpu, "auto") == (None, None)
    assert amp_settings(cpu, True) == (None, None)  # no error on a CPU
    assert amp_settings(torch.device("cuda"), False) == (None, None)
    with pytest.raises(ValueError, match="amp must be"):
        amp_settings(cpu, "yes")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert amp_settings(torch.device("cuda"), "auto") == (torch.bfloat16, None)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    with warnings.catch_warnings():  # without CUDA the scaler warns and disables itself
        warnings.simplefilter("ignore", UserWarning)
        dtype, scaler = amp_settings(torch.device("cuda"), True)
    assert dtype is torch.float16 and isinstance(scaler, torch.amp.GradScaler)


# ---------------------------------------------------------------- evaluate


class _FlagRecorder(nn.Linear):
    def forward(self, x):
        self.seen_training = self.training
        self.seen_grad = torch.is_grad_enabled()
        return super().forward(x)


def test_evaluate_matches_a_full_pass_and_restores_the_mode():
    dataset = _data(n=22, num_classes=6)
    model = _FlagRecorder(6, 6)
    result = evaluate(model, _loader(dataset, batch_size=5))
    assert model.seen_training is False and model.seen_grad is False
    assert model.training  # restored
    assert model.weight.grad is None
    x, y = dataset.tensors
    with torch.no_grad():
        logits = model(x)
    assert result["loss"] == pytest.approx(F.cross_entropy(logits, y).item(), rel=1e-6)
    assert result["top1"] == pytest.approx(accuracy(logits, y, 1))
    assert result["top5"] == pytest.approx(accuracy(logits, y, 5))


def test_evaluate_topk_capped_and_forward_fn():
    dataset = _data(n=8, num_classes=3)
    model = nn.Linear(6, 3)
    calls = []

    def forward_fn(m, inputs):
        calls.append(inputs.shape)
        return m(inputs)

    result = evaluate(model, _loader(dataset), topk=(1, 5), forward_fn=forward_fn)
    assert result["top5"] == 1.0 and 0.0 <= result["top1"] <= 1.0
    assert len(calls) == 2
    assert set(evaluate(model, _loader(dataset), topk=())) == {"loss"}


# ---------------------------------------------------------------- fit: history


def test_fit_history_columns_and_weighted_means():
    dataset = _data(n=10)
    model = nn.Linear(6, 3)
    x, y = dataset.tensors
    with torch.no_grad():
        logits = model(x)
    # lr=0 keeps the weights fixed; batches of 4, 4, 2 must average to the full-data mean
    history = _fit(model, _loader(dataset), _loader(dataset, 3), lr=0.0)
    assert list(history.columns) == HISTORY_COLUMNS
    row = history.iloc[0]
    assert row["epoch"] == 1 and row["lr"] == 0.0 and row["seconds"] > 0
    full_loss = F.cross_entropy(logits, y).item()
    assert row["train_loss"] == pytest.approx(full_loss, rel=1e-6)
    assert row["val_loss"] == pytest.approx(full_loss, rel=1e-6)
    assert row["train_acc"] == pytest.approx(accuracy(logits, y))
    assert row["val_acc"] == pytest.approx(accuracy(logits, y))
    assert history.attrs["best_epoch"] == 1 and history.attrs["monitor"] == "val_acc"


def test_fit_nan_columns_without_val_or_metric_and_lr_column():
    model = nn.Linear(6, 3)
    history = _fit(
        model,
        _loader(_data()),
        lr=0.1,
        schedule="step",
        step_gamma=0.5,
        num_epochs=3,
        metric_fn=None,
    )
    assert len(history) == 3 and list(history["epoch"]) == [1, 2, 3]
    assert history[["train_acc", "val_loss", "val_acc"]].isna().all().all()
    assert history["train_loss"].notna().all()
    assert list(history["lr"]) == pytest.approx([0.1, 0.05, 0.025])
    assert history.attrs["best_epoch"] is None


def test_fit_progress_false_draws_nothing_and_true_draws_bars(capsys):
    model = nn.Linear(6, 3)
    _fit(model, _loader(_data()), _loader(_data()), num_epochs=2)
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""
    bars = [ProgressBar("lin")]
    _fit(model, _loader(_data()), _loader(_data()), num_epochs=2, callbacks=bars)
    err = capsys.readouterr().err
    assert "lin 1/2" in err and "lin 2/2" in err and "val_acc" in err


def test_fit_rejects_bad_arguments():
    model = nn.Linear(6, 3)
    loader = _loader(_data())
    with pytest.raises(ValueError, match="monitor"):
        _fit(model, loader, monitor="accuracy")
    with pytest.raises(ValueError, match="val_loader"):
        _fit(model, loader, patience=2)  # val_acc is never measured
    with pytest.raises(ValueError, match="needs a folder"):
        _fit(model, loader, callbacks=[Checkpoints(None, resume=True)])
    with pytest.raises(ValueError, match="accum_steps"):
        _fit(model, loader, accum_steps=0)
    optimizer = _sgd(model)
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer)  # mode="min"
    with pytest.raises(ValueError, match="mode='max'"):
        _fit(model, loader, loader, optimizer=optimizer, scheduler=plateau)
    with pytest.raises(ValueError, match="label_smoothing"):
        _fit(model, loader, label_smoothing=0.1, loss_fn=F.cross_entropy)
    with pytest.raises(ValueError, match="one Checkpoints"):
        _fit(model, loader, callbacks=[Checkpoints("a"), Checkpoints("b")])
    with pytest.raises(ValueError, match=r"\(inputs, targets\)"):
        _fit(model, [(torch.randn(2, 6),)])


def test_fit_forward_fn_flattens_grouped_inputs():
    # a triplet-style batch (B, 3, D) goes through the model as (3B, D)
    x = torch.randn(8, 3, 6)
    model = nn.Linear(6, 4)

    def forward_fn(m, inputs):
        return m(inputs.flatten(0, 1)).view(inputs.shape[0], 3, -1)

    def loss_fn(embeddings, _):
        anchor, positive, negative = embeddings.unbind(1)
        return F.triplet_margin_loss(anchor, positive, negative)

    loader = _loader(TensorDataset(x, torch.zeros(8)))
    history = _fit(model, loader, forward_fn=forward_fn, loss_fn=loss_fn, metric_fn=None)
    assert math.isfinite(history["train_loss"].iloc[0])


def test_fit_calls_a_loss_fns_epoch_hooks_around_the_training_batches(tmp_path):
    events = []

    class HookedLoss:
        ends = 0

        def __call__(self, outputs, targets):
            events.append("train" if torch.is_grad_enabled() else "val")
            return F.cross_entropy(outputs, targets)

        def on_train_epoch_start(self):
            events.append("start")

        def on_train_epoch_end(self):
            events.append("end")
            self.ends += 1
            if self.ends == 2:
                raise ValueError("epoch 2 found nothing")

    model = nn.Linear(6, 3)
    loader = _loader(_data(8))  # two batches
    _fit(model, loader, loader, num_epochs=1, loss_fn=HookedLoss())
    assert events == ["start", "train", "train", "end", "val", "val"]
    with pytest.raises(ValueError, match="epoch 2 found nothing"):
        _fit(model, loader, num_epochs=3, loss_fn=HookedLoss(), callbacks=[Checkpoints(tmp_path)])
    assert torch.load(tmp_path / "last.pt", weights_only=False)["epoch"] == 1  # not recorded


# ---------------------------------------------------------------- gradient accumulation


def test_backward_step_micro_batches_give_the_full_batch_gradient():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3))
    x, y = torch.randn(8, 6), torch.randint(0, 3, (8,))
    loss_fn = nn.CrossEntropyLoss()
    backward_step(model, x, y, loss_fn=loss_fn)
    full = [p.grad.clone() for p in model.parameters()]
    model.zero_grad(set_to_none=True)
    for xb, yb in zip(x.split(2), y.split(2), strict=True):
        _, loss = backward_step(model, xb, yb, loss_fn=loss_fn, loss_scale=1 / 4)
        assert not loss.requires_grad
    for p, g in zip(model.parameters(), full, strict=True):
        torch.testing.assert_close(p.grad, g)


class _NoLen:
    """A loader whose length is unknown (like an IterableDataset's)."""

    def __init__(self, loader: DataLoader) -> None:
        self.loader = loader

    def __iter__(self):
        return iter(self.loader)


# 10 samples: a remainder step of one micro-batch; _NoLen: the remainder found at the end
@pytest.mark.parametrize(("n", "wrap"), [(8, False), (10, False), (8, True)])
def test_fit_accumulated_steps_match_big_batches(n, wrap):
    dataset = _data(n=n)
    torch.manual_seed(1)
    reference = nn.Linear(6, 3)
    model = nn.Linear(6, 3)
    model.load_state_dict(reference.state_dict())
    _fit(reference, _loader(dataset, batch_size=8), lr=0.5, momentum=0.9)
    loader = _NoLen(_loader(dataset, 2)) if wrap else _loader(dataset, 2)
    _fit(model, loader, lr=0.5, momentum=0.9, accum_steps=4, num_epochs=1)
    for p, q in zip(model.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(p, q)


class _RecordingSGD(torch.optim.SGD):
    """SGD that keeps a copy of the gradients of every step."""

    def __init__(self, params, **kwargs) -> None:
        super().__init__(params, **kwargs)
        self.grads: list[list[torch.Tensor]] = []

    def step(self, closure=None):
        self.grads.append([p.grad.clone() for g in self.param_groups for p in g["params"]])
        return super().step(closure)


def _step_gradients(dataset, batches: list[list[int]], accum_steps: int, no_len: bool):
    """The gradient of every optimiser step of one epoch of fit over `batches` (index lists)."""
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 3))
    optimizer = _RecordingSGD(model.parameters(), lr=0.5, momentum=0.9)
    loader = DataLoader(dataset, batch_sampler=batches)
    _fit(
        model,
        _NoLen(loader) if no_len else loader,
        accum_steps=accum_steps,
        optimizer=optimizer,
    )
    return optimizer.grads


# micro-batches of unequal size inside a step, and an epoch's last step short of samples
# (3 + 1) or of micro-batches (one of the two, found only at the end by a loader of no length)
# {case: (micro-batches, accum_steps, the steps' whole batches)}
UNEQUAL = {
    "3+1 in the middle": ([[0, 1, 2], [3], [4, 5], [6, 7, 8, 9]], 2,
                          [[0, 1, 2, 3], [4, 5, 6, 7, 8, 9]]),
    "last step 3+1": ([[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]], 2,
                      [[0, 1, 2, 3, 4, 5], [6, 7, 8, 9]]),
    "last step 1 of 3": ([[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]], 3,
                         [list(range(9)), [9]]),
    "last step 2+1 of 4": ([[0, 1], [2, 3], [4, 5], [6, 7], [8, 9], [10]], 4,
                           [list(range(8)), [8, 9, 10]]),
}  # fmt: skip


@pytest.mark.parametrize("no_len", [False, True], ids=["len", "no-len"])
@pytest.mark.parametrize("case", list(UNEQUAL))
def test_fit_accumulated_gradient_is_the_full_batch_gradient_for_unequal_micro_batches(
    case, no_len
):
    micro, accum_steps, whole = UNEQUAL[case]
    dataset = _data(n=11)
    got = _step_gradients(dataset, micro, accum_steps, no_len)
    want = _step_gradients(dataset, whole, 1, False)
    assert len(got) == len(want)
    for step, (g, w) in enumerate(zip(got, want, strict=True)):
        for a, b in zip(g, w, strict=True):
            torch.testing.assert_close(a, b, msg=lambda m, step=step: f"step {step + 1}: {m}")


def test_optimizer_step_grad_factor_scales_the_true_gradient_under_a_grad_scaler():
    # fp16 on CUDA steps through a GradScaler: the factor must apply to the unscaled gradient
    for scaler in (None, torch.amp.GradScaler("cpu", init_scale=1024.0)):
        w = nn.Parameter(torch.ones(3))
        optimizer = torch.optim.SGD([w], lr=1.0)
        loss = (w * torch.tensor([2.0, 4.0, 6.0])).sum()
        (scaler.scale(loss) if scaler is not None else loss).backward()
        optimizer_step(optimizer, scaler, grad_factor=0.5)
        torch.testing.assert_close(w.detach(), torch.tensor([0.0, -1.0, -2.0]))
        assert w.grad is None


# ---------------------------------------------------------------- failures


def test_nan_loss_raises_with_epoch_step_and_checkpoint(tmp_path):
    calls = []

    def loss_fn(outputs, targets):  # fine for epoch 1 (6 batches), NaN on epoch 2's 3rd
        calls.append(1)
        loss = F.cross_entropy(outputs, targets)
        return loss * math.nan if len(calls) == 9 else loss

    model = nn.Linear(6, 3)
    with pytest.raises(FloatingPointError) as info:
        _fit(
            model,
            _loader(_data()),
            num_epochs=3,
            loss_fn=loss_fn,
            callbacks=[Checkpoints(tmp_path)],
        )
    message = str(info.value)
    assert isinstance(info.value, NonFiniteLossError)
    assert "epoch 2" in message and "step 3" in message and "learning rate" in message
    assert str(tmp_path / "last.pt") in message

    # a regression with lr=1e6 diverges to inf within a few steps
    model = nn.Linear(6, 3)
    loader = _loader(TensorDataset(torch.randn(16, 6), torch.randn(16, 3)))
    with pytest.raises(FloatingPointError, match="no checkpoint saved yet"):
        _fit(model, loader, lr=1e6, loss_fn=F.mse_loss, metric_fn=None, num_epochs=9)


# ---------------------------------------------------------------- stopping and best epoch


def test_early_stopping_after_patience_epochs():
    dataset = _data()
    model = nn.Linear(6, 3)
    history = _fit(
        model,
        _loader(dataset),
        _loader(dataset),
        lr=0.0,
        num_epochs=10,
        patience=2,
        monitor="val_loss",
    )
    assert len(history) == 3  # epoch 1 best, 2 and 3 no better
    assert history.attrs["best_epoch"] == 1


def _ascent_after_first_epoch(model):
    # lr 0.1 for epoch 1, then -0.1: gradient ascent makes every later epoch worse
    optimizer = _sgd(model, lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda e: 1.0 if e == 0 else -1.0)
    return {"optimizer": optimizer, "scheduler": scheduler}


def test_restore_best_loads_the_best_epoch_weights(tmp_path):
    dataset = _data()
    loader = _loader(dataset)
    torch.manual_seed(0)
    one_epoch = nn.Linear(6, 3)
    start = {k: v.clone() for k, v in one_epoch.state_dict().items()}
    _fit(one_epoch, loader, loader, monitor="val_loss", **_ascent_after_first_epoch(one_epoch))

    for folder in (None, tmp_path):
        model = nn.Linear(6, 3)
        model.load_state_dict(start)
        history = _fit(
            model,
            loader,
            loader,
            num_epochs=3,
            monitor="val_loss",
            restore_best=True,
            callbacks=[Checkpoints(folder)],
            **_ascent_after_first_epoch(model),
        )
        assert history.attrs["best_epoch"] == 1 and len(history) == 3
        assert history["val_loss"].is_monotonic_increasing
        for p, q in zip(model.parameters(), one_epoch.parameters(), strict=True):
            assert torch.equal(p, q)

    best = torch.load(tmp_path / "best.pt", weights_only=True)
    assert best["epoch"] == 1
    assert torch.equal(best["model"]["weight"], one_epoch.weight)


def test_reduce_on_plateau_gets_the_monitored_value():
    seen = []

    class Spy(torch.optim.lr_scheduler.ReduceLROnPlateau):
        def step(self, metrics, *args, **kwargs):
            seen.append(metrics)
            return super().step(metrics, *args, **kwargs)

    dataset = _data()
    model = nn.Linear(6, 3)
    optimizer = _sgd(model, lr=0.1)
    scheduler = Spy(optimizer, mode="max", patience=0)
    history = _fit(
        model,
        _loader(dataset),
        _loader(dataset),
        optimizer=optimizer,
        scheduler=scheduler,
        num_epochs=3,
    )
    assert seen == list(history["val_acc"])


def test_seed_makes_fit_repeatable():
    def run():
        seed_everything(3)
        model = nn.Sequential(nn.Linear(6, 8), nn.Dropout(0.3), nn.Linear(8, 3))
        _fit(model, _loader(_data(), shuffle=True), num_epochs=2)
        return model

    for p, q in zip(run().parameters(), run().parameters(), strict=True):
        assert torch.equal(p, q)


def test_fit_val_metrics_add_columns_measured_on_the_val_loader(tmp_path):
    dataset = _data(n=10)
    model = nn.Linear(6, 3)
    x, y = dataset.tensors
    with torch.no_grad():
        logits = model(x)

    def wrong(outputs: torch.Tensor, targets: torch.Tensor) -> float:
        return 1.0 - accuracy(outputs, targets)

    history = _fit(
        model,
        _loader(dataset),
        _loader(dataset, 3),
        lr=0.0,
        val_metrics={"wrong": wrong},
        num_epochs=2,
        callbacks=[Checkpoints(tmp_path, per_settings=True)],
    )
    assert list(history.columns) == [*HISTORY_COLUMNS, "val_wrong"]
    assert history["val_wrong"].tolist() == pytest.approx([1 - accuracy(logits, y)] * 2)
    # the metric's name is part of the run's settings: without it, another run starts
    again = _fit(
        model,
        _loader(dataset),
        _loader(dataset, 3),
        lr=0.0,
        num_epochs=2,
        callbacks=[Checkpoints(tmp_path, per_settings=True)],
    )
    assert list(again.columns) == HISTORY_COLUMNS
    assert len([p for p in tmp_path.iterdir() if p.is_dir()]) == 2


# ---------------------------------------------------------------- callbacks


class _Recorder(Callback):
    """Notes every hook `fit` calls, with what the trainer holds at that moment."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def on_fit_start(self, trainer):
        self.calls.append(f"fit_start {len(trainer.history)}")

    def on_epoch_start(self, trainer, epoch):
        self.calls.append(f"epoch_start {epoch}")

    def on_batch_end(self, trainer, means):
        self.calls.append("batch " + ",".join(means))

    def on_epoch_end(self, trainer):
        row = trainer.history[-1]
        self.calls.append(f"epoch_end {row['epoch']} lr {trainer.optimizer.param_groups[0]['lr']}")

    def on_fit_end(self, trainer):
        self.calls.append(f"fit_end {trainer.best_epoch}")

    def teardown(self, trainer):
        self.calls.append("teardown")


def test_fit_calls_every_hook_in_order_and_teardown_after_an_error():
    recorder = _Recorder()
    model = nn.Linear(6, 3)
    loader = _loader(_data(8))  # two batches
    history = _fit(
        model, loader, loader, num_epochs=2, schedule="step", step_gamma=0.5, callbacks=[recorder]
    )
    assert recorder.calls == [
        "fit_start 0",
        "epoch_start 1",
        "batch loss,acc",
        "batch loss,acc",
        "epoch_end 1 lr 0.05",  # after the scheduler's step
        "epoch_start 2",
        "batch loss,acc",
        "batch loss,acc",
        "epoch_end 2 lr 0.025",
        f"fit_end {history.attrs['best_epoch']}",
        "teardown",
    ]

    def broken(outputs, targets):
        raise RuntimeError("broken loss")

    recorder, bars = _Recorder(), ProgressBar("x", enabled=False)
    with pytest.raises(RuntimeError, match="broken loss"):
        _fit(model, loader, loss_fn=broken, callbacks=[recorder, bars])
    assert recorder.calls == ["fit_start 0", "epoch_start 1", "teardown"]
    assert bars.bar is None  # closed
