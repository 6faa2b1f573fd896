"""airbench's mechanisms as recipe features: each does what it claims, on real CIFAR-10 images."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import zoo
from zoo.core.data import load_dataset
from zoo.core.loading import Classifier
from zoo.core.preprocess import normalize
from zoo.training import airbench


@pytest.fixture(scope="module")
def cifar_images(data_dir):
    images = load_dataset("cifar10", data_dir).train.spread(2000).images
    return normalize(images, zoo.get_spec("cifar_cnn_best").preprocessing)


def test_the_whitened_stem_decorrelates_the_patches_it_sees(cifar_images):
    network = zoo.get_spec("cifar_cnn_best").build()
    airbench.whiten_stem(network, cifar_images)
    assert not network.stem.weight.requires_grad
    with torch.no_grad():
        out = F.conv2d(cifar_images, network.stem.weight)  # no bias: the whitening itself
    half = out[:, :12].permute(1, 0, 2, 3).reshape(12, -1)  # the other 12 filters are the negations
    covariance = half @ half.T / half.shape[1]
    # Unit variance along every eigenvector (up to the eps that tames the smallest), none across them.
    assert torch.allclose(covariance.diag()[-6:], torch.ones(6), atol=0.05)  # eigh: smallest first
    assert (covariance - torch.diag(covariance.diag())).abs().max() < 0.05
    torch.testing.assert_close(network.stem.weight[12:], -network.stem.weight[:12])


def test_a_stem_of_the_wrong_shape_is_refused():
    with pytest.raises(zoo.ZooError, match="whiten_stem needs"):
        airbench.whiten_stem(zoo.get_spec("resnet18_cifar").build(), torch.zeros(2, 3, 32, 32))


def test_dirac_init_makes_a_convolution_the_identity_on_its_first_channels():
    conv = nn.Conv2d(4, 6, 3, padding=1, bias=False)
    airbench.dirac_init(conv)
    x = torch.randn(2, 4, 8, 8)
    torch.testing.assert_close(conv(x)[:, :4], x)


def test_triangular_schedule_rises_from_a_fifth_and_ends_at_its_ratio():
    parameter = nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([{"params": [parameter], "lr": 1.0}, {"params": [], "lr": 64.0}], lr=1.0)
    scheduler = airbench.TriangularLR(optimizer, t_initial=100, warmup_t=23, end_ratio=0.07)
    seen = []
    for step in (0, 23, 100):
        scheduler.step_update(step)
        seen.append([group["lr"] for group in optimizer.param_groups])
    assert seen[0] == pytest.approx([0.2, 12.8]) and seen[1] == pytest.approx([1.0, 64.0])
    assert seen[2] == pytest.approx([0.07, 0.07 * 64])


def test_lookahead_pulls_the_weights_to_its_average_and_ends_on_it():
    network = nn.Linear(3, 2)
    lookahead = airbench.Lookahead(network, total_steps=10)
    start = network.weight.detach().clone()
    with torch.no_grad():
        network.weight.add_(1.0)
    lookahead.update(network, 3)  # not a 5th step: nothing happens
    torch.testing.assert_close(network.weight, start + 1)
    lookahead.update(network, 5)  # decay 0.95^5 * 0.5^3: mostly the new weights
    decay = lookahead.decay(5)
    torch.testing.assert_close(network.weight, start + (1 - decay))
    with torch.no_grad():
        network.weight.add_(1.0)
    lookahead.update(network, 10)  # the last step: decay 1, the weights become the average
    torch.testing.assert_close(network.weight, start + (1 - decay))


def test_alternating_flips_mirror_each_image_in_every_other_epoch():
    start = airbench.alternating_flips(1000, seed=3, device=torch.device("cpu"))
    assert 400 < int(start.sum()) < 600
    epoch_one, epoch_two = start ^ False, start ^ True
    assert bool((epoch_one != epoch_two).all())
    assert torch.equal(start, airbench.alternating_flips(1000, seed=3, device=torch.device("cpu")))


def test_six_view_tta_is_the_mirrored_mean_of_the_image_and_two_one_pixel_shifts():
    torch.manual_seed(0)
    spec = zoo.get_spec("cifar_cnn_best")
    network = spec.build().eval()
    model = Classifier(network, spec, tta_shift=True).eval()
    x = torch.randn(3, 3, 32, 32)

    def mirrored(v):
        return (network(v) + network(v.flip(-1))) / 2

    padded = F.pad(x, (1, 1, 1, 1), mode="reflect")
    expected = 0.5 * mirrored(x) + 0.25 * mirrored(padded[..., :32, :32]) + 0.25 * mirrored(padded[..., 2:, 2:])
    with torch.no_grad():
        torch.testing.assert_close(model(x), expected)
        flip_only = Classifier(network, spec, tta_shift=False).eval()
        torch.testing.assert_close(flip_only(x), mirrored(x))
    assert model.pretrained_cfg["tta_shift"] is True and spec.tta_shift


def test_the_airbench_recipe_trains_and_records_its_whole_architecture(tmp_path, data_dir):
    out = tmp_path / "run"
    result = zoo.train(
        "cifar_cnn_best", epochs=2, batch_size=256, warmup_epochs=0.5, limit_train=2048, val_size=500,
        out=out, data_dir=data_dir, progress=False,
    )  # fmt: skip
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert records[1]["train_loss"] < records[0]["train_loss"] and result.test_accuracy > 0.2  # chance 0.1
    # The run's checkpoint rebuilds airbench's batch norms and logit scale whatever the registry says later.
    model = zoo.create_model(weights=out / "best.safetensors")
    assert model.network[2][2].eps == 1e-12 and model.tta_shift
    assert torch.equal(
        model.network.stem.weight, zoo.create_model(weights=out / "last.safetensors").network.stem.weight
    )
