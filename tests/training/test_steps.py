"""labkit.training.steps: `$LABKIT_AMP` chooses the mixed-precision path of amp="auto"."""

import warnings

import pytest
import torch

from labkit.training.steps import amp_settings


def test_labkit_amp_chooses_the_precision_of_auto(monkeypatch: pytest.MonkeyPatch) -> None:
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    monkeypatch.setenv("LABKIT_AMP", "float16")
    with warnings.catch_warnings():  # without CUDA the scaler warns and disables itself
        warnings.simplefilter("ignore", UserWarning)
        dtype, scaler = amp_settings(cuda)
    assert dtype is torch.float16 and isinstance(scaler, torch.amp.GradScaler)
    assert amp_settings(cpu) == (None, None)  # a CPU stays in full precision
    assert amp_settings(cuda, False) == (None, None)  # an explicit choice wins
    monkeypatch.setenv("LABKIT_AMP", "off")
    assert amp_settings(cuda) == (None, None)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    monkeypatch.setenv("LABKIT_AMP", "bfloat16")
    assert amp_settings(cuda) == (torch.bfloat16, None)
    monkeypatch.setenv("LABKIT_AMP", "half")
    with pytest.raises(ValueError, match=r"LABKIT_AMP\), got 'half'"):
        amp_settings(cuda)
