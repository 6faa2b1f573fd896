"""Every registered model, tested the moment it is registered (after timm's test_models.py)."""

from __future__ import annotations

import pytest
import torch

import zoo
from zoo.core.checkpoint import save_checkpoint
from zoo.core.summary import count_macs, count_params

MODELS = zoo.list_models()


def test_all_nine_models_are_registered_before_the_studies_reference_networks():
    assert MODELS[:9] == [
        "fcn_50k", "fcn_100k", "fcn_200k", "cnn_10k", "cnn_20k", "cnn_50k", "cnn_100k", "cifar_cnn_best", "resnet18_cifar",
    ]  # fmt: skip
    assert all(zoo.get_spec(name).family == "ref" for name in MODELS[9:])


@pytest.mark.parametrize("name", MODELS)
def test_forward_backward_every_parameter_gets_a_gradient(name):
    spec = zoo.get_spec(name)
    torch.manual_seed(0)
    model = zoo.create_model(name).train()
    logits = model(torch.randn(4, *spec.input_shape))
    assert logits.shape == (4, spec.num_classes)
    assert torch.isfinite(logits).all()
    logits.logsumexp(1).mean().backward()
    no_grad = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not no_grad, f"parameters without gradient: {no_grad}"


@pytest.mark.parametrize("name", MODELS)
def test_registry_parameter_count_and_macs_are_true_and_within_budget(name):
    spec = zoo.get_spec(name)
    model = spec.build()
    params = count_params(model)
    assert params == spec.params
    assert spec.min_params <= params <= spec.budget
    assert count_macs(model, spec.input_shape) == spec.macs


@pytest.mark.parametrize("name", [n for n in MODELS if n.startswith(("fcn", "cnn"))])
def test_fashion_mnist_models_use_90_to_100_percent_of_budget(name):
    spec = zoo.get_spec(name)
    assert 0.9 * spec.budget <= count_params(spec.build()) <= spec.budget  # the real network, not the registry's figure


def test_fcns_have_no_convolutions_and_cnns_do():
    for name in MODELS:
        has_conv = any(isinstance(m, torch.nn.Conv2d) for m in zoo.create_model(name).modules())
        assert has_conv == (not name.startswith("fcn")), name


def test_cifar_cnn_best_is_plain_and_resnet_has_the_cifar_stem():
    plain = zoo.create_model("cifar_cnn_best").network
    assert isinstance(plain, torch.nn.Sequential)  # a chain of layers: no skip connections
    resnet = zoo.create_model("resnet18_cifar").network
    assert resnet.conv1.kernel_size == (3, 3) and resnet.conv1.stride == (1, 1)
    assert isinstance(resnet.maxpool, torch.nn.Identity)


@pytest.mark.parametrize("name", MODELS)
def test_safetensors_round_trip(name, tmp_path):
    spec = zoo.get_spec(name)
    torch.manual_seed(1)
    model = zoo.create_model(name)
    path = tmp_path / "weights.safetensors"
    save_checkpoint(path, model.state_dict(), {"model": name})
    loaded = zoo.create_model(name, weights=path)
    x = torch.randn(2, *spec.input_shape)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)
