"""VGG19's features against torchvision's, without torch.

tests/fixtures/torch/vgg19_reference.npz holds what torchvision's VGG19
computed, under torch, from weights and images that
tests/torch_references.py makes from fixed seeds
(scripts/make_torch_fixtures.py).
"""

import jax
import numpy as np
import pytest

from spg_jax.pretrained import conversion
from spg_jax.pretrained import imagenet
from spg_jax.pretrained import vgg

import torch_references

_SEED = 2  # scripts/make_torch_fixtures.py's VGG_SEED


@pytest.fixture(scope="module")
def reference():
  return torch_references.reference("vgg19_reference.npz")


@pytest.fixture(scope="module")
def taps():
  """Every ReLU's output for both seeded image batches."""
  params = vgg.params_from_torch(
      torch_references.random_weights(vgg.TORCH_SHAPES, _SEED), "seeded")
  network = vgg.VGG19Features(taps=vgg.TAPS)
  apply = jax.jit(lambda images: network.apply({"params": params},
                                               imagenet.normalise(images)))
  return [apply(batch) for batch in torch_references.images(_SEED)]


def test_the_layout_is_torchvisions(reference):
  published = torch_references.published_shapes(reference)
  assert vgg.TORCH_SHAPES == published


def test_every_relu_equals_torchvisions(reference, taps):
  first, second = taps
  for name, tap, other in zip(vgg.TAPS, first, second, strict=True):
    step = max(1, tap.shape[1] // 6)
    expected = reference[name].transpose(1, 2, 0)
    # Seen: at most 2.6e-5 apart, on values up to 17.
    np.testing.assert_allclose(tap[0, ::step, ::step, ::16], expected,
                               rtol=0, atol=1e-4, err_msg=name)
    np.testing.assert_allclose(np.mean(np.abs(tap - other)),
                               reference[f"l1/{name}"], rtol=1e-5,
                               err_msg=name)


def test_only_the_layers_up_to_the_deepest_tap_exist():
  network = vgg.VGG19Features(taps=("relu2_1", "relu1_2"))
  shapes = jax.eval_shape(network.init, jax.random.key(0),
                          jax.ShapeDtypeStruct((1, 16, 24, 3), np.float32))
  assert sorted(shapes["params"]) == ["features_0", "features_2",
                                      "features_5"]
  outputs = jax.eval_shape(network.apply, shapes,
                           jax.ShapeDtypeStruct((1, 16, 24, 3), np.float32))
  assert [output.shape for output in outputs] == [(1, 8, 12, 128),
                                                  (1, 16, 24, 64)]


def test_unknown_taps_are_refused_with_the_known_ones():
  with pytest.raises(ValueError, match=r"unknown \['relu6_1'\]. Choose from"
                     r" relu1_1, relu1_2, relu2_1"):
    vgg.check_taps(["relu1_1", "relu6_1"])


def test_a_misshaped_array_is_named_with_its_file():
  state = torch_references.random_weights(vgg.TORCH_SHAPES, _SEED)
  state["features.34.weight"] = state["features.34.weight"][:, :, :1]
  with pytest.raises(conversion.WeightsError,
                     match=r"vgg19.pth is not the expected weights: mis-shaped"
                     r" features.34.weight: \(512, 512, 1, 3\) in the file"):
    vgg.params_from_torch(state, "vgg19.pth")
