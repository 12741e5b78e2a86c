"""Dense evaluation: the convolutional classifier gives the model's logits, then a score map."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import vgg16

from labkit.vgg.dense_evaluation import (
    class_score_map,
    dense_scores,
    fully_convolutional,
    min_input_size,
)


class TinyVGG(nn.Module):
    """torchvision's VGG layout in miniature: 8 x 8 inputs give a 2 x 2 grid of 8 channels."""

    def __init__(self, num_classes: int = 5, pool: bool = True):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(True), nn.MaxPool2d(2),
            nn.Conv2d(4, 8, 3, padding=1), nn.ReLU(True), nn.MaxPool2d(2),
        )  # fmt: skip
        self.avgpool = nn.AdaptiveAvgPool2d((2, 2)) if pool else nn.Identity()
        self.classifier = nn.Sequential(
            nn.Linear(8 * 2 * 2, 16), nn.ReLU(True), nn.Dropout(0.5),
            nn.Linear(16, 16), nn.ReLU(True), nn.Dropout(0.5),
            nn.Linear(16, num_classes),
        )  # fmt: skip

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


def _tiny(**kwargs) -> TinyVGG:
    torch.manual_seed(0)
    return TinyVGG(**kwargs).double().eval()


@pytest.fixture(scope="module")
def vgg():
    torch.manual_seed(0)
    return vgg16(weights=None).eval()


@pytest.mark.slow
def test_vgg16_gives_its_logits_at_224_and_a_score_map_at_288(vgg):
    fc_model = fully_convolutional(vgg)
    assert [type(m).__name__ for m in fc_model.classifier] == [
        "Conv2d", "ReLU", "Dropout", "Conv2d", "ReLU", "Dropout", "Conv2d",
    ]  # fmt: skip
    assert fc_model.classifier[0].kernel_size == (7, 7)
    assert min_input_size(fc_model) == 224
    torch.manual_seed(1)
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        expected = vgg(x)
    logits = class_score_map(fc_model, x)
    assert logits.shape == (2, 1000, 1, 1)
    assert (logits.flatten(1) - expected).abs().max() < 1e-4
    assert class_score_map(fc_model, torch.randn(1, 3, 288, 288)).shape == (1, 1000, 3, 3)


def test_score_map_is_the_classifier_on_every_window_of_features():
    model = _tiny(pool=False)  # g = 2 derived from in_features / channels
    fc_model = fully_convolutional(model)
    x = torch.randn(2, 3, 20, 24, dtype=torch.float64)
    maps = class_score_map(fc_model, x)
    features = model.features(x)  # (2, 8, 5, 6)
    assert maps.shape == (2, 5, 4, 5)
    for i in range(4):
        for j in range(5):
            window = features[..., i : i + 2, j : j + 2].flatten(1)
            torch.testing.assert_close(maps[..., i, j], model.classifier(window))


def test_dense_scores_at_the_minimum_size_are_the_model_posteriors():
    model = _tiny()
    fc_model = fully_convolutional(model)
    assert min_input_size(fc_model) == 8
    x = torch.randn(3, 3, 8, 8, dtype=torch.float64)
    plain, flipped = F.softmax(model(x), dim=1), F.softmax(model(x.flip(-1)), dim=1)
    torch.testing.assert_close(dense_scores(fc_model, x, flip=False), plain)
    torch.testing.assert_close(dense_scores(fc_model, x), (plain + flipped) / 2)


def test_dense_scores_average_the_map_before_the_softmax():
    fc_model = fully_convolutional(_tiny())
    x = torch.randn(2, 3, 16, 16, dtype=torch.float64)
    maps = class_score_map(fc_model, x)  # (2, 5, 3, 3)
    expected = F.softmax(maps.mean(dim=(2, 3)), dim=1)
    torch.testing.assert_close(dense_scores(fc_model, x, flip=False), expected)
    torch.testing.assert_close(dense_scores(fc_model, x).sum(1), torch.ones(2, dtype=torch.float64))


def test_conversion_copies_weights_and_restores_training_flags():
    model = _tiny().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fc_model = fully_convolutional(model)
    assert fc_model.training and model.training
    for conv in fc_model.modules():
        if isinstance(conv, nn.Conv2d):
            nn.init.zeros_(conv.weight)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    fc_model = fully_convolutional(model)
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    first = dense_scores(fc_model, x)  # eval inside: dropout off, so repeatable
    torch.testing.assert_close(dense_scores(fc_model, x), first)
    assert all(m.training for m in fc_model.modules())
    assert not any(m.training for m in fully_convolutional(model.eval()).modules())


def test_bad_models_and_inputs_say_what_is_wrong():
    with pytest.raises(ValueError, match="model.features"):
        fully_convolutional(nn.Sequential(nn.Linear(2, 2)))
    model = _tiny()
    model.classifier[0] = nn.Linear(8 * 3 * 3, 16).double()
    with pytest.raises(ValueError, match=r"reads 72 features.*8 channels on a 2 x 2 grid"):
        fully_convolutional(model)
    no_pool = _tiny(pool=False)
    no_pool.classifier[0] = nn.Linear(30, 16).double()
    with pytest.raises(ValueError, match="not C\\*g\\*g"):
        fully_convolutional(no_pool)
    model = _tiny()
    model.classifier[1] = nn.BatchNorm1d(16)
    with pytest.raises(ValueError, match="classifier layer 1 .*BatchNorm1d"):
        fully_convolutional(model)
    fc_model = fully_convolutional(_tiny())
    with pytest.raises(ValueError, match=r"7 x 9 is smaller .* at least 8 x 8"):
        dense_scores(fc_model, torch.zeros(1, 3, 7, 9, dtype=torch.float64))
    with pytest.raises(ValueError, match="fully_convolutional"):
        class_score_map(_tiny().features, torch.zeros(1, 3, 8, 8))
