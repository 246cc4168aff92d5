"""The FID Inception and the Fréchet distance against pytorch-fid's.

tests/fixtures/torch/inception_fid_reference.npz holds what pytorch-fid
computed, under torch, from weights, images and features that
tests/torch_references.py makes from fixed seeds
(scripts/make_torch_fixtures.py).
"""

import jax
import numpy as np
import pytest

from spg_jax.pretrained import inception

import torch_references

_SEED = 3  # scripts/make_torch_fixtures.py's INCEPTION_SEED


@pytest.fixture(scope="module")
def reference():
  return torch_references.reference("inception_fid_reference.npz")


def test_the_layout_is_pytorch_fids(reference):
  published = torch_references.published_shapes(reference)
  assert inception.torch_shapes() == published


def test_pool3_features_equal_pytorch_fids(reference):
  state = torch_references.random_weights(inception.torch_shapes(), _SEED)
  params = inception.params_from_torch(state, "seeded")
  first, _ = torch_references.images(_SEED)
  features = jax.jit(inception.InceptionV3FID().apply)(
      {"params": params}, (first + 1) / 2)
  assert features.shape == (len(first), inception.FEATURES)
  # Seen: at most 1.2e-6 apart, on values up to 2.6.
  np.testing.assert_allclose(features, reference["pool3"], rtol=0, atol=1e-4)


def test_the_frechet_distance_equals_pytorch_fids(reference):
  real, fake = torch_references.features(_SEED)
  distance = inception.frechet_distance(inception.statistics(real),
                                        inception.statistics(fake))
  np.testing.assert_allclose(distance, reference["frechet_distance"],
                             rtol=1e-6)
  assert inception.frechet_distance(inception.statistics(real),
                                    inception.statistics(real)) == (
                                        pytest.approx(0.0, abs=1e-6))


def test_statistics_need_two_images():
  with pytest.raises(ValueError, match=r"at least 2 images, got shape"
                     r" \(1, 2048\)"):
    inception.statistics(np.zeros((1, 2048)))
