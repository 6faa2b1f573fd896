"""Knowledge distillation from a stronger zoo model (Hinton et al., 2015), a proven lift for small MLPs and CNNs.

The teacher's logits are computed once, for every training image and its mirror, before training starts:
the teacher then costs one pass over the data instead of one forward per student step, which is what
makes distillation affordable on a CPU. In exchange the student's augmentation is limited to flips
(the recipe refuses crops and erasing together with a teacher).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from zoo.errors import ZooError
from zoo.preprocess import predict_logits
from zoo.recipe import Recipe
from zoo.registry import ModelSpec, get_spec


class Teacher:
    def __init__(self, logits: torch.Tensor, weight: float, temperature: float) -> None:
        self.logits = logits  # [N, 2, classes]: each training image, then its mirror
        self.weight = weight
        self.temperature = temperature

    @classmethod
    def load(cls, recipe: Recipe, student: ModelSpec, images: torch.Tensor, device: torch.device) -> Teacher:
        """Run the teacher named by the recipe over the (uint8) training images and their mirrors."""
        from zoo.api import create_model

        name, _, path = recipe.teacher.partition("=")
        spec = get_spec(name)
        if spec.dataset != student.dataset or spec.classes != student.classes:
            raise ZooError(f"teacher {name} is trained on {spec.dataset}, the student on {student.dataset}")
        model = create_model(name, weights=path or None, pretrained=not path).to(device)
        plain = predict_logits(model, images, spec.preprocessing, device=device)
        mirrored = predict_logits(model, images.flip(-1), spec.preprocessing, device=device)
        return cls(torch.stack([plain, mirrored], 1).to(device), recipe.distill_weight, recipe.distill_temperature)

    def blend(
        self, hard_loss: torch.Tensor, logits: torch.Tensor, indices: torch.Tensor, flip: torch.Tensor | None
    ) -> torch.Tensor:
        """(1 - w) * label loss + w * T² * KL(teacher || student), both softened by temperature T."""
        view = flip.long() if flip is not None else torch.zeros_like(indices)
        target = self.logits[indices, view]
        t = self.temperature
        soft = F.kl_div(F.log_softmax(logits / t, 1), F.log_softmax(target / t, 1), log_target=True, reduction="batchmean")
        return (1 - self.weight) * hard_loss + self.weight * t * t * soft
