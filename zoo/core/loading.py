"""The one place that turns a model name, a weights tag, a checkpoint file or "shipped" into a ready model.

    name[.tag] or checkpoint -> ModelSpec -> builder -> weights (sha256-checked, strictly loaded) -> Classifier

Every mode (evaluate, predict, export, benchmark, distillation) receives what `load_model` resolved and
none turns a name back into weights on its own. A checkpoint names its model (and any architecture
arguments it was trained with) in its metadata, so a checkpoint alone is enough; a run's resumable
`last.safetensors` loads too (its EMA weights where the run kept them, since those are the ones its
validation measured).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from zoo.core.checkpoint import read_checkpoint
from zoo.core.errors import WeightsError, ZooError
from zoo.core.files import sha256_file
from zoo.core.registry import get_spec
from zoo.core.spec import ModelSpec
from zoo.core.weights import shipped_weights, split_tag

RANDOM_INIT_SEED = 0  # random-init weights are seeded, so every "untrained" export or benchmark is the same file


class Classifier(nn.Module):
    """A zoo network that carries its config. In eval mode its output is what zoo reports (the one
    implementation of test-time views, which the ONNX export traces): for `tta_flip` models the mean of the
    logits of the image and its mirror; with `tta_shift` also, at equal total weight, that mean for the image
    shifted one pixel up-left and one down-right (reflected at the border): airbench's six views.

    Its state_dict is the network's own (no prefix), so checkpoints load and save the same with or without it.
    """

    def __init__(
        self,
        network: nn.Module,
        spec: ModelSpec,
        weights_sha256: str | None = None,
        tta_shift: bool | None = None,
    ) -> None:
        super().__init__()
        self.network = network
        self.pretrained_cfg = spec.pretrained_cfg(weights_sha256, tta_shift)
        self.tta_flip = spec.tta_flip
        self.tta_shift = spec.tta_flip and bool(self.pretrained_cfg["tta_shift"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training or not self.tta_flip:
            return self.network(x)
        logits = self._mirrored(x)
        if self.tta_shift:
            height, width = x.shape[-2:]
            padded = F.pad(x, (1, 1, 1, 1), mode="reflect")
            shifted = (self._mirrored(padded[..., :height, :width]) + self._mirrored(padded[..., 2:, 2:])) / 2
            logits = (logits + shifted) / 2
        return logits

    def _mirrored(self, x: torch.Tensor) -> torch.Tensor:
        return (self.network(x) + self.network(x.flip(-1))) / 2

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
    tag: str | None = None  # the shipped weights' tag (`name.tag`)

    @property
    def label(self) -> str:
        """How reports name them: the shipped file's name, a checkpoint's path, "random-init" or "untrained"."""
        if self.path is None:
            return self.kind
        return self.path.name if self.kind == "shipped" else str(self.path)


@dataclass(frozen=True)
class ResolvedWeights:
    spec: ModelSpec
    source: WeightsSource
    tensors: dict[str, torch.Tensor] | None  # None for untrained models
    arch: dict[str, object] = field(default_factory=dict)  # architecture arguments the weights were trained with
    tta_shift: bool | None = None  # the test views the shipped weights were measured with (None: the spec's)


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
    random_init: bool | None = None,
    **arch: object,
) -> LoadedModel:
    """Resolve a model once. `weights=PATH` loads a checkpoint (its metadata names the model, so `name` may
    be omitted); else `pretrained` loads the shipped, sha256-verified weights of `name` (`name.tag` for a tag
    other than the default); a model without them is refused unless `random_init` asks for seeded random
    weights (the same every time); the refusal suggests `random_init` only where the caller offers it
    (False, not None). `pretrained=False` gives untrained weights drawn from torch's global random
    state. Keyword arguments change the architecture (`widths=`, `dropout=`), as the builder takes them.
    """
    resolved = resolve_weights(name, weights=weights, pretrained=pretrained, random_init=random_init)
    spec, source, tensors = resolved.spec, resolved.source, resolved.tensors
    arch = {**resolved.arch, **arch}
    if source.kind == "random-init":
        with torch.random.fork_rng(devices=[]):  # seeded, and the caller's random state left as it was
            torch.manual_seed(RANDOM_INIT_SEED)
            network = _build(spec, arch)
    else:
        network = _build(spec, arch)  # untrained models draw from the caller's random state, as nn.Modules do
    if tensors is not None:
        _load_strict(network, tensors, source.path, spec.name)
    return LoadedModel(spec, Classifier(network, spec, source.sha256, resolved.tta_shift).eval(), source)


def resolve_weights(
    name: str | None = None,
    *,
    weights: str | os.PathLike[str] | None = None,
    pretrained: bool = True,
    random_init: bool | None = None,
) -> ResolvedWeights:
    """The spec, the weights' provenance and their tensors (None for untrained models), without building."""
    if weights is not None:
        return _checkpoint_weights(name, Path(weights))
    if name is None:
        raise ZooError("name a model or pass {weights=PATH}", argument="name")
    spec = get_spec(name)
    if not pretrained:
        return ResolvedWeights(spec, WeightsSource("untrained", None, None), None)
    tag = split_tag(name)[1] or spec.weights_tag
    shipped = shipped_weights(spec.name, tag) if tag else None
    if shipped is not None:
        tensors, _ = read_checkpoint(shipped.verified_path())
        source = WeightsSource("shipped", shipped.path, shipped.sha256, shipped.tag)
        return ResolvedWeights(spec, source, tensors, dict(shipped.arch), tta_shift=shipped.tta_shift)
    if not random_init:
        alternative = " or {random_init=True}" if random_init is False else ""
        raise WeightsError(
            f"{spec.name} ships no trained weights yet: pass {{weights=PATH}} (a run's best.safetensors from "
            f"training {spec.name}){alternative}",
        )
    return ResolvedWeights(spec, WeightsSource("random-init", None, None), None)


def _checkpoint_weights(name: str | None, path: Path) -> ResolvedWeights:
    tensors, meta = read_checkpoint(path)
    owner = meta.get("model")
    if owner is None:
        raise WeightsError(f"{path} is not a zoo checkpoint (no 'model' in its metadata)", argument="weights")
    if name is not None and owner != get_spec(name).name:
        raise WeightsError(f"{path} holds weights for {owner!r}, not {split_tag(name)[0]!r}", argument="weights")
    spec = get_spec(owner)
    kind = "checkpoint"
    if meta.get("kind") == "resume":
        tensors, kind = _weights_of_resume_checkpoint(tensors), "resume checkpoint"
    arch = json.loads(meta["arch"]) if "arch" in meta else {}
    return ResolvedWeights(spec, WeightsSource(kind, path, sha256_file(path)), tensors, arch)


def _build(spec: ModelSpec, arch: dict[str, object]) -> nn.Module:
    try:
        return spec.build(**arch)
    except (TypeError, ValueError) as error:  # an argument the builder does not take, or a bad value
        raise ZooError(f"{spec.name} cannot be built with {arch}: {error}", argument="arch") from error


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
        raise WeightsError(f"{path} does not fit {name}: " + "; ".join(problems), argument="weights")
    network.load_state_dict(tensors)


def _few(keys: list[str], shown: int = 3) -> str:
    """A key list short enough for one line: the first few and how many more."""
    more = f" and {len(keys) - shown} more" if len(keys) > shown else ""
    return f"{len(keys)} tensor(s): " + ", ".join(keys[:shown]) + more
