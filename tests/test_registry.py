from __future__ import annotations

import dataclasses

import pytest

import zoo
from zoo.core.errors import ZooError
from zoo.core.spec import register


def test_registering_a_duplicate_name_fails():
    spec = zoo.get_spec("cnn_10k")
    with pytest.raises(ValueError, match="already registered"):
        register(dataclasses.replace(spec))


def test_unknown_name_suggests_the_closest():
    with pytest.raises(ZooError, match="did you mean 'cnn_20k'"):
        zoo.get_spec("cnn_20")


def test_list_models_filters_by_glob_or_substring():
    assert zoo.list_models("fcn_*") == ["fcn_50k", "fcn_100k", "fcn_200k"]
    assert zoo.list_models("cifar") == ["cifar_cnn_best", "resnet18_cifar"]
    assert zoo.list_models("nothing*") == []


def test_recipe_overrides_are_typed_and_checked():
    recipe = zoo.get_spec("cnn_10k").recipe
    changed = recipe.replace(epochs="3", lr="0.05", hflip="false")
    assert (changed.epochs, changed.lr, changed.hflip) == (3, 0.05, False)
    with pytest.raises(ZooError, match="unknown recipe field"):
        recipe.replace(epoch=3)
    with pytest.raises(ZooError, match="invalid value for epochs"):
        recipe.replace(epochs=0)
    with pytest.raises(ZooError, match="expected int"):
        recipe.replace(batch_size="many")


def test_untrained_model_refuses_pretrained_with_a_clear_error(unshipped):
    # A model without shipped weights, whichever models ship today.
    unshipped("cnn_10k")
    assert zoo.get_spec("cnn_10k").weights_tag is None and zoo.get_spec("cnn_10k").accuracy is None
    with pytest.raises(ZooError, match="ships no trained weights yet"):
        zoo.create_model("cnn_10k", pretrained=True)
