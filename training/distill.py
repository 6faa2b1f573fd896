"""Knowledge distillation from a stronger zoo model (Hinton et al., 2015), a proven lift for small MLPs and CNNs.

The teacher's logits are computed once, before training starts, for every training image in every view
the student can be shown: each crop offset ((2 * crop_padding + 1)² of them) and its mirror. The teacher
then costs a fixed number of passes over the data instead of one forward per student step, which is
what makes distillation affordable on a CPU: 2 passes with flips only, 18 with crop_padding=1, 50 with
crop_padding=2. Random erasing has no finite set of views; it is applied to the student's view after the
crop and mirror, so the teacher's target is its answer on the whole image the student sees part of. A recipe
with teacher_crops=False treats crops alike: the teacher answers each whole image and its mirror (2 passes),
which makes a large teacher (resnet18_cifar) affordable on a CPU.

A student that trains under bf16 autocast gets its teacher's logits in bf16 too (channels-last, about 3x
faster on a CPU with AMX); they are targets, never a reported accuracy.

The logits are cached on disk (the user cache, keyed by the teacher's weights, the views and the training
images), so the seeds of a study and the trials of a `zoo tune` sweep compute them once between them.
"""

from __future__ import annotations

import functools
import hashlib

import torch
import torch.nn.functional as F

from zoo.core.cache import cache_dir
from zoo.core.errors import ZooError
from zoo.core.files import atomic_write, sha256_file
from zoo.core.loading import load_model
from zoo.core.preprocess import predict_logits
from zoo.core.recipe import Recipe
from zoo.core.registry import get_spec
from zoo.core.spec import ModelSpec
from zoo.core.weights import shipped_weights

from .augment import crop_at


class Teacher:
    def __init__(self, logits: torch.Tensor, weight: float, temperature: float, weights_sha256: str) -> None:
        self.logits = logits  # [N, offsets, 2, classes]: each training image per crop offset, then mirrored
        self.weight = weight
        self.temperature = temperature
        # Which weights taught: a name alone ("cnn_50k") means whatever is shipped, which changes over time.
        self.weights_sha256 = weights_sha256

    @classmethod
    def load(
        cls, recipe: Recipe, student: ModelSpec, images: torch.Tensor, device: torch.device, bf16: bool = False
    ) -> Teacher:
        """Run the teacher named by the recipe over every view of the (uint8) training images.

        "a+b+c" names an ensemble: its logits are the mean of its members' logits for each view, so one
        temperature softens them all alike (a mean of logits is the members' product of experts)."""
        members = [
            cls._member_logits(member, recipe, student, images, device, bf16) for member in recipe.teacher.split("+")
        ]
        logits = torch.stack([logits for logits, _ in members]).mean(0) if len(members) > 1 else members[0][0]
        weights = "+".join(sha for _, sha in members) if all(sha for _, sha in members) else ""
        return cls(logits, recipe.distill_weight, recipe.distill_temperature, weights)

    @classmethod
    def _member_logits(
        cls, member: str, recipe: Recipe, student: ModelSpec, images: torch.Tensor, device: torch.device, bf16: bool
    ) -> tuple[torch.Tensor, str]:
        """One teacher's logits for every view, and the sha256 of its weights ("" for a random initialisation)."""
        name, _, path = member.partition("=")
        spec = get_spec(name)
        if spec.dataset != student.dataset or spec.classes != student.classes:
            raise ZooError(
                f"teacher {name} is trained on {spec.dataset}, the student on {student.dataset}", argument="teacher"
            )
        padding = recipe.crop_padding if recipe.teacher_crops else 0
        shipped = None if path else shipped_weights(name)
        weights = sha256_file(path) if path else shipped.sha256 if shipped else None
        reflect = recipe.crop_reflect and padding > 0
        views = f"{padding}{':reflect' if reflect else ''}{':bf16' if bf16 else ''}"
        key = hashlib.sha256(f"{name}:{weights}:{views}:{tuple(images.shape)}:".encode())
        key.update(images.contiguous().cpu().numpy().tobytes())
        cached = cache_dir() / "teacher-logits" / f"{key.hexdigest()[:32]}.pt"
        # The teacher is built either way: building it draws from the global RNG (its initial weights,
        # then overwritten), and the student's initialisation after it must not depend on the cache.
        model = load_model(name, weights=path or None).model.network.to(device)
        if weights and cached.is_file():
            logits = torch.load(cached).to(device)
        else:
            logits = cls._compute(model, spec, images, padding, device, reflect, bf16)
            if weights:  # random-init teachers (no weights hash) are never cached
                atomic_write(cached, lambda tmp: torch.save(logits.cpu(), tmp))
        return logits, weights or ""

    @staticmethod
    def _compute(
        model,
        spec: ModelSpec,
        images: torch.Tensor,
        padding: int,
        device: torch.device,
        reflect: bool = False,
        bf16: bool = False,
    ) -> torch.Tensor:
        # The bare network: each view (crop offset, mirror) gets its own logits, no flip averaging.
        views = []
        run = functools.partial(
            predict_logits, preprocessing=spec.preprocessing, device=device, bf16=bf16, channels_last=bf16
        )
        for offset in range((2 * padding + 1) ** 2):
            shifted = crop_at(images, padding, torch.full((len(images),), offset), reflect) if padding else images
            plain = run(model, shifted)
            mirrored = run(model, shifted.flip(-1))
            views.append(torch.stack([plain, mirrored], 1))
        return torch.stack(views, 1).to(device)

    def blend(
        self,
        hard_loss: torch.Tensor,
        logits: torch.Tensor,
        indices: torch.Tensor,
        flip: torch.Tensor | None,
        offsets: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """(1 - w) * label loss + w * T² * KL(teacher || student), both softened by temperature T.

        `indices`, `offsets` and `flip` say which training image the student saw, in which view."""
        mirrored = flip.long() if flip is not None else torch.zeros_like(indices)
        # a teacher that answered whole images only (teacher_crops=False) has one offset for every crop
        offset = offsets if offsets is not None and self.logits.shape[1] > 1 else torch.zeros_like(indices)
        target = self.logits[indices, offset, mirrored]
        t = self.temperature
        student, teacher = F.log_softmax(logits / t, 1), F.log_softmax(target / t, 1)
        soft = F.kl_div(student, teacher, log_target=True, reduction="batchmean")
        return (1 - self.weight) * hard_loss + self.weight * t * t * soft
