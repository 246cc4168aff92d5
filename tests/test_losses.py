"""Tests of the loss functions against values computed by hand."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from spg_jax.training import losses


def _outputs(*logit_values):
  """Fake multi-scale outputs: one scale per value, logits only."""
  return [[jnp.full([1, 2, 2, 1], v, jnp.float32)] for v in logit_values]


@pytest.mark.parametrize(
    "kind, real, fake, expected",
    [
        # LSGAN: mean((r - 1)^2) + mean(f^2), averaged over scales.
        ("lsgan", (1.0, 0.0), (0.0, 1.0), (0.0 + 1.0) / 2 + (0.0 + 1.0) / 2),
        ("lsgan", (0.5,), (0.5,), 0.25 + 0.25),
        # Hinge: relu(1 - r) + relu(1 + f).
        ("hinge", (2.0, 0.0), (-2.0, 0.0), (0.0 + 1.0) / 2 + (0.0 + 1.0) / 2),
        # Non-saturating: softplus(-r) + softplus(f); at 0 both are log 2.
        ("nonsaturating", (0.0,), (0.0,), 2 * np.log(2.0)),
    ],
)
def test_discriminator_loss_hand_values(kind, real, fake, expected):
  loss, metrics = losses.discriminator_loss(_outputs(*real), _outputs(*fake), kind)
  np.testing.assert_allclose(loss, expected, rtol=1e-6)
  np.testing.assert_allclose(metrics["d_real_score"], np.mean(real), rtol=1e-6)
  np.testing.assert_allclose(metrics["d_fake_score"], np.mean(fake), rtol=1e-6)


@pytest.mark.parametrize(
    "kind, fake, expected",
    [
        ("lsgan", (0.0, 2.0), (1.0 + 1.0) / 2),
        ("hinge", (0.5, -1.5), (-0.5 + 1.5) / 2),
        ("nonsaturating", (0.0,), np.log(2.0)),
    ],
)
def test_generator_gan_loss_hand_values(kind, fake, expected):
  np.testing.assert_allclose(
      losses.generator_gan_loss(_outputs(*fake), kind), expected, rtol=1e-6
  )


def test_unknown_gan_loss_is_refused():
  with pytest.raises(ValueError, match="lsgan"):
    losses.generator_gan_loss(_outputs(0.0), "wgan")


def test_feature_matching_averages_l1_over_layers_and_scales():
  real = [
      [jnp.zeros([1, 2]), jnp.zeros([1, 3]), jnp.ones([1, 1])],
      [jnp.ones([1, 2]), jnp.zeros([1, 1])],
  ]
  fake = [
      [jnp.full([1, 2], 2.0), jnp.full([1, 3], -1.0), jnp.full([1, 1], 9.0)],
      [jnp.full([1, 2], 4.0), jnp.full([1, 1], 9.0)],
  ]
  # Scale 0: layers with L1 2 and 1 -> 1.5; scale 1: one layer, L1 3.
  # Logits (last entries) are ignored. Mean over scales: 2.25.
  np.testing.assert_allclose(
      losses.feature_matching_loss(real, fake), 2.25, rtol=1e-6
  )


def test_feature_matching_sends_no_gradient_to_real_features():
  fake = [[jnp.ones([1, 2]), jnp.zeros([1, 1])]]
  grad = jax.grad(
      lambda r: losses.feature_matching_loss([[r, jnp.zeros([1, 1])]], fake)
  )(jnp.zeros([1, 2]))
  np.testing.assert_array_equal(grad, 0.0)


def test_hole_cross_entropy_counts_only_hole_pixels():
  # Two pixels; the first (in the hole) has uniform logits over 4 classes.
  logits = jnp.array([[[[0.0, 0.0, 0.0, 0.0], [10.0, -10.0, 0.0, 0.0]]]])
  labels = jnp.array([[[2, 1]]])
  mask = jnp.array([[[[1.0], [0.0]]]])
  np.testing.assert_allclose(
      losses.hole_cross_entropy(logits, labels, mask), np.log(4.0), rtol=1e-6
  )


def test_masked_mean_divides_by_weighted_element_count():
  values = jnp.arange(12.0).reshape([1, 2, 2, 3])
  mask = jnp.array([[[[1.0], [0.0]], [[0.0], [1.0]]]])
  # Pixels (0,0) and (1,1): values 0,1,2 and 9,10,11 -> mean 5.5.
  np.testing.assert_allclose(losses.masked_mean(values, mask), 5.5)
  np.testing.assert_allclose(losses.masked_mean(values, 0.0 * mask), 0.0)


def _loss_config(**overrides):
  config = dict(
      gan="lsgan",
      gan_weight=1.0,
      feature_matching_weight=10.0,
      cross_entropy_weight=2.0,
      l1_hole_weight=3.0,
      l1_known_weight=0.5,
      vgg_weight=0.0,
      lpips_weight=0.0,
  )
  config.update(overrides)
  return ml_collections.ConfigDict(config)


def test_sg_generator_loss_weights_its_terms():
  image = jnp.zeros([1, 1, 2, 3])
  generated = jnp.array([[[[0.5] * 3, [0.25] * 3]]])
  mask = jnp.array([[[[1.0], [0.0]]]])
  real = [[jnp.zeros([1, 2]), jnp.ones([1, 1])]]
  fake = [[jnp.ones([1, 2]), jnp.zeros([1, 1])]]
  total, metrics = losses.sg_generator_loss(
      generated, image, mask, fake, real, _loss_config()
  )
  np.testing.assert_allclose(metrics["l1_hole"], 0.5)
  np.testing.assert_allclose(metrics["l1_known"], 0.25)
  np.testing.assert_allclose(metrics["g_gan"], 1.0)
  np.testing.assert_allclose(metrics["feature_matching"], 1.0)
  np.testing.assert_allclose(total, 3 * 0.5 + 0.5 * 0.25 + 1.0 + 10 * 1.0)


def test_sp_generator_loss_weights_its_terms():
  logits = jnp.zeros([1, 1, 1, 4])
  labels = jnp.zeros([1, 1, 1], jnp.int32)
  mask = jnp.ones([1, 1, 1, 1])
  real = [[jnp.zeros([1, 2]), jnp.ones([1, 1])]]
  fake = [[jnp.zeros([1, 2]), jnp.ones([1, 1])]]
  total, metrics = losses.sp_generator_loss(
      logits, labels, mask, fake, real, _loss_config()
  )
  np.testing.assert_allclose(metrics["cross_entropy_hole"], np.log(4.0), rtol=1e-6)
  np.testing.assert_allclose(metrics["g_gan"], 0.0)
  np.testing.assert_allclose(total, 2.0 * np.log(4.0), rtol=1e-6)


@pytest.mark.parametrize("key", ["vgg_weight", "lpips_weight"])
def test_perceptual_loss_without_weights_is_a_clear_error(key):
  losses.check_perceptual_weights(_loss_config())
  with pytest.raises(ValueError, match=f"--config.loss.{key}=0"):
    losses.check_perceptual_weights(_loss_config(**{key: 1.0}))
