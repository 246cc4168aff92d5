"""LPIPS and AlexNet against the lpips package and torchvision, without torch.

tests/fixtures/torch/lpips_reference.npz holds what lpips.LPIPS (v0.1,
AlexNet) computed, under torch, from weights and images that
tests/torch_references.py makes from fixed seeds
(scripts/make_torch_fixtures.py); here the same weights go through the real
converter into the Flax networks.
"""

import jax
import numpy as np
import pytest

from spg_jax.pretrained import alexnet
from spg_jax.pretrained import conversion
from spg_jax.pretrained import lpips
from spg_jax.pretrained import torch_files

import torch_references

_SEED = 1  # scripts/make_torch_fixtures.py's LPIPS_SEED


@pytest.fixture(scope="module")
def reference():
  return torch_references.reference("lpips_reference.npz")


@pytest.fixture(scope="module")
def params():
  alexnet_state = torch_references.random_weights(alexnet.TORCH_SHAPES, _SEED)
  heads_state = torch_references.random_weights(lpips.HEAD_TORCH_SHAPES, _SEED)
  return lpips.params_from_torch(alexnet_state, heads_state, "seeded AlexNet",
                                 "seeded heads")


def test_the_layouts_are_the_published_ones(reference):
  published = torch_references.published_shapes(reference)
  assert {**alexnet.TORCH_SHAPES, **lpips.HEAD_TORCH_SHAPES} == published


def test_alexnet_features_equal_torchvisions(reference, params):
  first, _ = torch_references.images(_SEED)
  scaled = (first[:1] - np.asarray(lpips.SHIFT)) / np.asarray(lpips.SCALE)
  taps = alexnet.AlexNetFeatures().apply({"params": params["net"]},
                                         scaled.astype(np.float32))
  for index, tap in enumerate(taps):
    expected = reference[f"relu{index + 1}"].transpose(0, 2, 3, 1)
    assert tap.shape == expected.shape, index
    # Seen: at most 1.3e-5 apart, on values up to about 12.
    np.testing.assert_allclose(tap, expected, rtol=0, atol=1e-4,
                               err_msg=f"relu{index + 1}")


def test_distances_equal_the_lpips_packages(reference, params):
  first, second = torch_references.images(_SEED)
  distance = jax.jit(lpips.LPIPS().apply)({"params": params}, first, second)
  assert distance.shape == (len(first),)
  np.testing.assert_allclose(distance, reference["distances"], rtol=0,
                             atol=1e-5)
  # Each pair its own distance, and none between an image and itself.
  assert len(set(np.round(np.asarray(distance), 6))) == len(first)
  np.testing.assert_array_equal(
      lpips.LPIPS().apply({"params": params}, first, first), 0.0)


def test_the_published_heads_convert_and_weigh_every_layer():
  heads = torch_files.load_state_dict(
      torch_references.FIXTURES / "lpips_v0.1_alex.pth")
  seeded = torch_references.random_weights(alexnet.TORCH_SHAPES, _SEED)
  converted = lpips.params_from_torch(seeded, heads, "seeded", "alex.pth")
  for index, width in enumerate((64, 192, 384, 256, 256)):
    kernel = converted[f"lin{index}"]["kernel"]
    assert kernel.shape == (1, 1, width, 1)
    np.testing.assert_array_equal(
        kernel[0, 0, :, 0], heads[f"lin{index}.model.1.weight"][0, :, 0, 0])


def test_missing_and_misshaped_arrays_are_named_with_their_file():
  state = torch_references.random_weights(alexnet.TORCH_SHAPES, _SEED)
  del state["features.8.bias"]
  state["features.3.weight"] = state["features.3.weight"][:, :32]
  with pytest.raises(
      conversion.WeightsError,
      match=r"alexnet.pth is not the expected weights: missing"
      r" \['features.8.bias'\], mis-shaped features.3.weight:"
      r" \(192, 32, 5, 5\) in the file, \(192, 64, 5, 5\) expected",
  ):
    alexnet.params_from_torch(state, "alexnet.pth")
