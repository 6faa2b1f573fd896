"""The one place that turns a model name, a checkpoint file or "shipped" into a ready model.

    name or checkpoint -> ModelSpec -> builder -> weights (sha256-checked, strictly loaded) -> Classifier

Every mode (evaluate, predict, export, benchmark, distillation) receives what `load_model` resolved and
none turns a name back into weights on its own. A checkpoint names its model in its metadata, so a
checkpoint alone is enough; a run's resumable `last.safetensors` loads too (its EMA weights where the run
kept them, since those are the ones its validation measured).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from zoo.checkpoint import read_checkpoint, sha256_file, shipped_weights_path
from zoo.errors import WeightsError, ZooError
from zoo.images import photo_recipe
from zoo.registry import ModelSpec, get_spec

RANDOM_INIT_SEED = 0  # random-init weights are seeded, so every "untrained" export or benchmark is the same file


def pretrained_cfg(spec: ModelSpec, weights_sha256: str | None = None) -> dict[str, object]:
    """What a model needs to be run as zoo runs it, in timm's `pretrained_cfg` spirit (plain data)."""
    pre = spec.preprocessing
    return {
        "model": spec.name,
        "dataset": spec.dataset,
        "classes": list(spec.classes),
        "mean": list(pre.mean),  # per channel, on the [0, 1] scale: input = (pixel / 255 - mean) / std
        "std": list(pre.std),
        "input_size": list(spec.input_shape),  # (C, H, W)
        "light_on_dark": pre.light_on_dark,
        "tta_flip": spec.tta_flip,  # the Classifier in eval mode averages image and mirror itself
        "photo_recipe": photo_recipe(pre),  # how an arbitrary image becomes the input (zoo.transforms)
        "weights_sha256": weights_sha256,
    }


class Classifier(nn.Module):
    """A zoo network that carries its config. In eval mode its output is what zoo reports: for `tta_flip`
    models the mean of the logits of the image and its mirror (the one implementation of flip TTA).

    Its state_dict is the network's own (no prefix), so checkpoints load and save the same with or without it.
    """

    def __init__(self, network: nn.Module, spec: ModelSpec, weights_sha256: str | None = None) -> None:
        super().__init__()
        self.network = network
        self.tta_flip = spec.tta_flip
        self.pretrained_cfg = pretrained_cfg(spec, weights_sha256)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.network(x)
        if self.tta_flip and not self.training:
            logits = (logits + self.network(x.flip(-1))) / 2
        return logits

    def state_dict(self, *args, **kwargs):
        return self.network.state_dict(*args, **kwargs)

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        return self.network.load_state_dict(state_dict, strict=strict, assign=assign)


@dataclass(frozen=True)
class WeightsSource:
    """Where a model's weights came from."""

    kind: str  # "shipped", "checkpoint", "resume checkpoint", "random-init" (seeded) or "untrained"
    path: Path | None  # the file read; None for random-init
    sha256: str | None  # of that file; None for random-init

    @property
    def label(self) -> str:
        """How reports name them: the shipped file's name, a checkpoint's path, "random-init" or "untrained"."""
        if self.path is None:
            return self.kind
        return self.path.name if self.kind == "shipped" else str(self.path)


@dataclass(frozen=True)
class LoadedModel:
    spec: ModelSpec
    model: Classifier  # in eval mode
    weights: WeightsSource


def load_model(
    name: str | None = None,
    *,
    weights: str | os.PathLike[str] | None = None,
    pretrained: bool = True,
    random_init: bool = False,
) -> LoadedModel:
    """Resolve a model once. `weights=PATH` loads a checkpoint (its metadata names the model, so `name` may
    be omitted); else `pretrained` loads the shipped, sha256-verified weights; a model without them is
    refused unless `random_init` asks for seeded random weights (the same every time). `pretrained=False`
    gives untrained weights drawn from torch's global random state.
    """
    spec, source, tensors = resolve_weights(name, weights=weights, pretrained=pretrained, random_init=random_init)
    if source.kind == "random-init":
        with torch.random.fork_rng(devices=[]):  # seeded, and the caller's random state left as it was
            torch.manual_seed(RANDOM_INIT_SEED)
            network = spec.builder()
    else:
        network = spec.builder()  # untrained models draw from the caller's random state, as nn.Modules do
    if tensors is not None:
        _load_strict(network, tensors, source.path, spec.name)
    return LoadedModel(spec, Classifier(network, spec, source.sha256).eval(), source)


def resolve_weights(
    name: str | None = None,
    *,
    weights: str | os.PathLike[str] | None = None,
    pretrained: bool = True,
    random_init: bool = False,
) -> tuple[ModelSpec, WeightsSource, dict[str, torch.Tensor] | None]:
    """The spec, the weights' provenance and their tensors (None for untrained models), without building."""
    if weights is not None:
        path = Path(weights)
        tensors, meta = read_checkpoint(path)
        owner = meta.get("model")
        if owner is None:
            raise WeightsError(f"{path} is not a zoo checkpoint (no 'model' in its metadata)")
        if name is not None and owner != get_spec(name).name:
            raise WeightsError(f"{path} holds weights for {owner!r}, not {name!r}")
        spec = get_spec(owner)
        kind = "checkpoint"
        if meta.get("kind") == "resume":
            tensors, kind = _weights_of_resume_checkpoint(tensors), "resume checkpoint"
        return spec, WeightsSource(kind, path, sha256_file(path)), tensors
    if name is None:
        raise ZooError("name a model or pass weights=PATH")
    spec = get_spec(name)
    if pretrained and spec.weights_sha256 is not None:
        path = verified_shipped_weights(spec)
        tensors, _ = read_checkpoint(path)
        return spec, WeightsSource("shipped", path, spec.weights_sha256), tensors
    if not pretrained:
        return spec, WeightsSource("untrained", None, None), None
    if not random_init:
        raise WeightsError(
            f"{spec.name} ships no trained weights yet: pass weights=PATH (a run's best.safetensors from "
            f"training {spec.name}) or random_init=True"
        )
    return spec, WeightsSource("random-init", None, None), None


def verified_shipped_weights(spec: ModelSpec) -> Path:
    """The path of a model's shipped weights after their sha256 check; a clear error when absent or changed."""
    if spec.weights_sha256 is None:
        raise WeightsError(f"{spec.name} ships no trained weights yet")
    path = shipped_weights_path(spec.weights_file)
    if not path.is_file():
        raise WeightsError(f"shipped weights {path} are missing; reinstall zoo")
    digest = sha256_file(path)
    if digest != spec.weights_sha256:
        raise WeightsError(
            f"{path} fails its sha256 check (found {digest[:12]}…, expected {spec.weights_sha256[:12]}…)"
        )
    return path


def _weights_of_resume_checkpoint(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # A run's last.safetensors holds model.*, ema.* (when the recipe uses EMA), optimizer.* and rng.*;
    # validation measured the EMA weights where there are any.
    prefix = "ema." if any(k.startswith("ema.") for k in tensors) else "model."
    return {k.removeprefix(prefix): v for k, v in tensors.items() if k.startswith(prefix)}


def _load_strict(network: nn.Module, tensors: dict[str, torch.Tensor], path: Path | None, name: str) -> None:
    """Load every tensor or none, naming each missing, unexpected or misshapen one (in short)."""
    expected = network.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    misshapen = sorted(
        f"{k} {tuple(tensors[k].shape)} != {tuple(v.shape)}"
        for k, v in expected.items()
        if k in tensors and tensors[k].shape != v.shape
    )
    problems = [
        f"{label} {_few(keys)}"
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", misshapen))
        if keys
    ]
    if problems:
        raise WeightsError(f"{path} does not fit {name}: " + "; ".join(problems))
    network.load_state_dict(tensors)


def _few(keys: list[str], shown: int = 3) -> str:
    """A key list short enough for one line: the first few and how many more."""
    more = f" and {len(keys) - shown} more" if len(keys) > shown else ""
    return f"{len(keys)} tensor(s): " + ", ".join(keys[:shown]) + more
