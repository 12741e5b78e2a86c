"""The digit labs' shared data settings: sizes and caps from the settings, loaders' batches."""

from pathlib import Path

import torch

from labkit.labs import densenet_resnext
from labkit.labs.digits import digit_loaders, load_digits


def test_load_digits_follows_the_settings(tmp_path: Path, capsys) -> None:
    settings = densenet_resnext.settings("smoke", train_per_class=3, test_per_class=2)
    data = load_digits(settings, root=tmp_path)
    assert data.train.images.shape == (30, 3, settings.image_size, settings.image_size)
    assert len(data.test) == 20 and data.train.transform is not None
    assert "(at most 3/2 per class), 10 classes, 16px" in capsys.readouterr().out


def test_digit_loaders_take_the_batch_and_the_settings_evaluation_batch(tmp_path: Path) -> None:
    settings = densenet_resnext.settings("smoke", eval_batch_size=7)
    data = load_digits(settings, root=tmp_path, verbose=False)
    train_loader, test_loader = digit_loaders(data, settings, batch_size=5, seed=1)
    assert train_loader.batch_size == 5 and test_loader.batch_size == 7
    assert train_loader.generator.initial_seed() == 1
    first = torch.cat([labels for _, labels in test_loader])
    assert torch.equal(first, data.test.labels)  # evaluation in order
