"""Knowledge distillation: the teacher's precomputed logits are the teacher's outputs for exactly the view
(crop offset, mirror) of the image the student is shown, and a distilled run trains end to end."""

from __future__ import annotations

import json

import pytest
import torch

import zoo
from zoo.core.errors import ZooError
from zoo.core.preprocess import predict_logits
from zoo.training.augment import crop_at
from zoo.training.distill import Teacher


def test_crop_at_shifts_by_the_offset_and_the_centre_is_the_identity():
    images = torch.arange(2 * 5 * 5, dtype=torch.float32).reshape(2, 1, 5, 5)
    assert torch.equal(crop_at(images, 1, torch.tensor([4, 4])), images)  # offset 4 of 3x3 = no shift
    shifted = crop_at(images, 1, torch.tensor([0, 8]))
    assert torch.equal(shifted[0, 0, 1:, 1:], images[0, 0, :-1, :-1]) and shifted[0, 0, 0].abs().sum() == 0
    assert torch.equal(shifted[1, 0, :-1, :-1], images[1, 0, 1:, 1:]) and shifted[1, 0, -1].abs().sum() == 0


def test_teacher_logits_match_the_teacher_on_each_view(fashion_mnist, random_checkpoint):
    path = random_checkpoint("cnn_10k", seed=1)
    recipe = zoo.get_spec("fcn_50k").recipe.replace(teacher=f"cnn_10k={path}", distill_weight=0.5, crop_padding=1)
    images = fashion_mnist.test.images[:16]
    teacher = Teacher.load(recipe, zoo.get_spec("fcn_50k"), images, torch.device("cpu"))
    assert teacher.logits.shape == (16, 9, 2, 10)
    model = zoo.create_model("cnn_10k", weights=path).network  # the bare network: one view, no flip average
    preprocessing = zoo.get_spec("cnn_10k").preprocessing
    for offset, mirrored in [(0, False), (4, True), (7, False)]:
        view = crop_at(images, 1, torch.full((16,), offset))
        view = view.flip(-1) if mirrored else view
        expected = predict_logits(model, view, preprocessing)
        torch.testing.assert_close(teacher.logits[:, offset, int(mirrored)], expected, rtol=1e-4, atol=1e-5)


def test_a_teacher_without_crops_answers_the_whole_image_for_every_crop(fashion_mnist, random_checkpoint):
    """teacher_crops=False: one view per image and mirror, the teacher's answer on the uncropped image, and
    the target of every crop offset the student is shown."""
    path = random_checkpoint("cnn_10k", seed=5)
    recipe = zoo.get_spec("fcn_50k").recipe.replace(
        teacher=f"cnn_10k={path}", distill_weight=1.0, crop_padding=2, teacher_crops=False
    )
    images = fashion_mnist.test.images[:16]
    teacher = Teacher.load(recipe, zoo.get_spec("fcn_50k"), images, torch.device("cpu"))
    assert teacher.logits.shape == (16, 1, 2, 10)
    model = zoo.create_model("cnn_10k", weights=path).network
    preprocessing = zoo.get_spec("cnn_10k").preprocessing
    torch.testing.assert_close(teacher.logits[:, 0, 1], predict_logits(model, images.flip(-1), preprocessing))
    student = torch.randn(16, 10)
    indices, flip = torch.arange(16), torch.rand(16) < 0.5
    loss = teacher.blend(torch.tensor(0.0), student, indices, flip, torch.randint(0, 25, (16,)))
    assert loss == teacher.blend(torch.tensor(0.0), student, indices, flip, torch.zeros(16, dtype=torch.long)) > 0


def test_bf16_teacher_logits_are_cached_apart_and_close_to_fp32(fashion_mnist):
    """A student trained under bf16 autocast gets bf16 teacher logits: the shipped teacher's answers, cached
    apart from the fp32 ones."""
    recipe = zoo.get_spec("fcn_50k").recipe.replace(teacher="cnn_10k", distill_weight=0.5, crop_padding=0)
    images, student, cpu = fashion_mnist.test.images[:256], zoo.get_spec("fcn_50k"), torch.device("cpu")
    fp32 = Teacher.load(recipe, student, images, cpu).logits
    bf16 = Teacher.load(recipe, student, images, cpu, bf16=True).logits
    assert not torch.equal(fp32, bf16)  # computed, not read from the fp32 cache
    assert (fp32.argmax(-1) == bf16.argmax(-1)).float().mean() > 0.97
    assert (bf16 - fp32).abs().mean() < 0.05 * fp32.abs().mean()


def test_an_ensemble_teacher_s_logits_are_its_members_mean_on_each_view(fashion_mnist, random_checkpoint):
    first, second = random_checkpoint("cnn_10k", seed=3), random_checkpoint("cnn_20k", seed=4)
    recipe = zoo.get_spec("fcn_50k").recipe.replace(distill_weight=0.5, crop_padding=1)
    images, student, cpu = fashion_mnist.test.images[:8], zoo.get_spec("fcn_50k"), torch.device("cpu")
    alone = [
        Teacher.load(recipe.replace(teacher=t), student, images, cpu) for t in (f"cnn_10k={first}", f"cnn_20k={second}")
    ]
    ensemble = Teacher.load(recipe.replace(teacher=f"cnn_10k={first}+cnn_20k={second}"), student, images, cpu)
    assert not torch.equal(alone[0].logits, alone[1].logits)
    torch.testing.assert_close(ensemble.logits, (alone[0].logits + alone[1].logits) / 2)
    assert ensemble.weights_sha256 == f"{alone[0].weights_sha256}+{alone[1].weights_sha256}"


def test_teacher_logits_are_computed_once_per_teacher_views_and_images(fashion_mnist, random_checkpoint, monkeypatch):
    path = random_checkpoint("cnn_10k", seed=2)
    recipe = zoo.get_spec("fcn_50k").recipe.replace(teacher=f"cnn_10k={path}", distill_weight=0.5, crop_padding=1)
    images = fashion_mnist.test.images[:8]
    first = Teacher.load(recipe, zoo.get_spec("fcn_50k"), images, torch.device("cpu"))
    computed = []
    original = Teacher._compute
    monkeypatch.setattr(Teacher, "_compute", lambda *a: computed.append(1) or original(*a))
    again = Teacher.load(recipe, zoo.get_spec("fcn_50k"), images, torch.device("cpu"))
    assert torch.equal(first.logits, again.logits) and not computed  # read from the cache
    other_images = Teacher.load(recipe, zoo.get_spec("fcn_50k"), fashion_mnist.test.images[8:16], torch.device("cpu"))
    other_views = Teacher.load(recipe.replace(crop_padding=0), zoo.get_spec("fcn_50k"), images, torch.device("cpu"))
    assert len(computed) == 2 and other_views.logits.shape == (8, 1, 2, 10)
    assert not torch.equal(other_images.logits, first.logits)


@pytest.mark.parametrize("erasing", [0.0, 0.5])
def test_student_learns_from_the_teacher_alone(tmp_path, data_dir, erasing):
    """distill_weight=1 ignores the labels: the student can only beat chance by matching the shipped
    cnn_50k on the views it was shown, so misaligned teacher logits would leave it near 10%. With random
    erasing the teacher's target is its answer on the whole view, of which the student sees a part."""
    out = tmp_path / "run"
    result = zoo.train(
        "fcn_50k", epochs=1, limit_train=2000, val_size=500, out=out, data_dir=data_dir, progress=False,
        teacher="cnn_50k", distill_weight=1.0, crop_padding=1, erasing=erasing,
    )  # fmt: skip
    assert result.test_accuracy > 0.4  # 0.61 measured without erasing; chance is 0.1
    config = json.loads((out / "config.json").read_text())
    assert config["recipe"]["teacher"] == "cnn_50k" and config["recipe"]["distill_weight"] == 1.0
    # The name alone changes meaning when cnn_50k is re-shipped: the run records which weights taught it.
    assert config["teacher_weights_sha256"] == zoo.get_spec("cnn_50k").weights_sha256
    from zoo.study import _teacher_line

    # A bare name resolves to the default tag, and the card names that tag and its hash.
    line = _teacher_line("fcn_50k", config["recipe"], config["teacher_weights_sha256"])
    assert line.startswith(f"`cnn_50k.{zoo.get_spec('cnn_50k').weights_tag}` (sha256 ")
    assert "was not recorded" in _teacher_line("fcn_50k", config["recipe"], "0" * 64)


def test_the_card_names_each_member_of_an_ensemble_teacher_by_tag():
    from zoo.core.weights import shipped_weights
    from zoo.study import _teacher_line

    recipe = {"teacher": "cnn_100k.v3+cnn_50k.v3", "distill_weight": 0.5, "distill_temperature": 4.0}
    shas = [shipped_weights(*member.split(".")).sha256 for member in recipe["teacher"].split("+")]
    line = _teacher_line("cnn_100k", recipe, "+".join(shas))
    assert line.startswith("the mean logits of 2: `cnn_100k.v3` (sha256 ") and "; `cnn_50k.v3` (sha256 " in line
    assert "not recorded" not in line
    # A record that does not name every member's weights names none of them.
    assert _teacher_line("cnn_100k", recipe, shas[0]).count("was not recorded") == 2


def test_teacher_refuses_a_mismatched_data_set(tmp_path, data_dir):
    with pytest.raises(ZooError, match="trained on cifar10"):
        zoo.train(
            "fcn_50k", epochs=1, limit_train=100, val_size=50, out=tmp_path / "r", data_dir=data_dir,
            progress=False, teacher="resnet18_cifar=unused.safetensors",
        )  # fmt: skip
