"""Tests of the loss functions against values computed by hand."""

import dataclasses

import jax
from jax.sharding import PartitionSpec as P
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from configs import synthetic
from spg_jax.data import classes
from spg_jax.data import labelling
from spg_jax.runtime import sharding
from spg_jax.training import config_checks
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


def test_cross_entropy_counts_only_the_regions_pixels():
  # Two pixels; the first (in the hole) has uniform logits over 4 classes.
  logits = jnp.array([[[[0.0, 0.0, 0.0, 0.0], [10.0, -10.0, 0.0, 0.0]]]])
  labels = jnp.array([[[2, 1]]])
  mask = jnp.array([[[[1.0], [0.0]]]])
  np.testing.assert_allclose(
      losses.region_cross_entropy(logits, labels, mask), np.log(4.0), rtol=1e-6
  )


def test_masked_mean_divides_by_weighted_element_count():
  values = jnp.arange(12.0).reshape([1, 2, 2, 3])
  mask = jnp.array([[[[1.0], [0.0]], [[0.0], [1.0]]]])
  # Pixels (0,0) and (1,1): values 0,1,2 and 9,10,11 -> mean 5.5.
  np.testing.assert_allclose(losses.masked_mean(values, mask), 5.5)
  np.testing.assert_allclose(losses.masked_mean(values, 0.0 * mask), 0.0)


def _per_device_masked_mean(values, weights, scale):
  """`masked_mean(values * scale)` as a data-parallel step computes it.

  Each of the 4 devices takes one example and its own gradient with respect
  to the replicated `scale` (the step's parameters); the value and gradient
  are then averaged over devices, as the step averages metrics and
  gradients.
  """

  def per_device(values, weights, scale):
    varying = jax.lax.pcast(scale, sharding.BATCH_AXIS, to="varying")
    value, grad = jax.value_and_grad(
        lambda s: losses.masked_mean(values * s, weights, sharding.BATCH_AXIS)
    )(varying)
    return jax.lax.pmean((value, grad), sharding.BATCH_AXIS)

  batch = P(sharding.BATCH_AXIS)
  return jax.jit(
      jax.shard_map(
          per_device,
          mesh=sharding.make_mesh(),
          in_specs=(batch, batch, P()),
          out_specs=P(),
      )
  )(values, weights, scale)


def test_masked_mean_over_devices_is_the_global_ratio():
  """Normalised by the global weight sum, not each device's: the mean over
  devices of value and gradient is sum(values * w) / sum(w) and its
  gradient, however unevenly the weights are spread (one device holds a
  large hole, one a single pixel, one none)."""
  assert jax.device_count() == 4, "conftest.py should give 4 CPU devices"
  values = np.random.default_rng(0).uniform(0, 1, [4, 6, 10, 3])
  weights = np.zeros([4, 6, 10, 1])
  weights[0, 1:6, 2:9] = 1.0
  weights[1, 4, 7] = 1.0
  weights[3, :2, :] = 1.0
  scale = np.array([1.0, 2.0, 3.0])
  value, grad = _per_device_masked_mean(values, weights, scale)
  broadcast = np.broadcast_to(weights, values.shape)
  count = broadcast.sum()
  np.testing.assert_allclose(
      value, (values * broadcast * scale).sum() / count, rtol=1e-6
  )
  np.testing.assert_allclose(
      grad, (values * broadcast).sum(axis=(0, 1, 2)) / count, rtol=1e-6
  )


@pytest.mark.parametrize("on_devices", [False, True])
def test_masked_mean_without_weights_is_zero_with_finite_gradients(on_devices):
  values = jnp.ones([4, 2, 2, 3])
  weights = jnp.zeros([4, 2, 2, 1])
  scale = jnp.ones([3])
  if on_devices:
    value, grad = _per_device_masked_mean(values, weights, scale)
  else:
    value, grad = jax.value_and_grad(
        lambda s: losses.masked_mean(values * s, weights)
    )(scale)
  assert value == 0.0
  np.testing.assert_array_equal(grad, 0.0)


def _void_table():
  """A class table whose class 0 is void."""
  return labelling.ClassTable(
      names=("void", "road", "car", "sky"),
      colors=((0, 0, 0), (1, 1, 1), (2, 2, 2), (3, 3, 3)),
      void="void",
  )


def test_cross_entropy_on_void_false_leaves_void_hole_pixels_out(monkeypatch):
  """Three hole pixels and a known one: a void pixel predicted badly
  (p = 1/10, cross-entropy log 10), a car and another void pixel at p = 1/2
  (log 2). Left out, void pixels count neither in the sum nor in the pixel
  count, so only the car's log 2 remains."""
  log_2, log_3, log_7 = np.log(2.0), np.log(3.0), np.log(7.0)
  logits = jnp.array([[[
      [0.0, log_7, 0.0, 0.0],  # void, in the hole: p(void) = 1/10
      [0.0, 0.0, log_3, 0.0],  # car, in the hole: p(car) = 3/6
      [log_3, 0.0, 0.0, 0.0],  # void in the hole, predicted as void: 3/6
      [0.0, 0.0, 0.0, 9.0],  # road, known: never counts
  ]]])
  labels = jnp.array([[[0, 2, 0, 1]]])
  mask = jnp.array([[[[1.0], [1.0], [1.0], [0.0]]]])
  with_void = losses.region_cross_entropy(logits, labels, mask)
  np.testing.assert_allclose(
      with_void, (np.log(10.0) + 2 * log_2) / 3, rtol=1e-6
  )
  config = _loss_config(cross_entropy_on_void=False)
  table = "void_first"
  monkeypatch.setitem(classes.CLASS_TABLES, table, _void_table())
  excluded = losses.excluded_cross_entropy_class(config, table)
  assert excluded == 0
  without_void = losses.region_cross_entropy(logits, labels, mask, excluded)
  np.testing.assert_allclose(without_void, log_2, rtol=1e-6)
  assert losses.excluded_cross_entropy_class(_loss_config(), table) is None


def test_leaving_out_void_without_a_void_class_is_refused(monkeypatch):
  config = synthetic.get_config("tiny")
  config.loss.cross_entropy_on_void = False
  table = classes.get_class_table(config.data.classes)
  monkeypatch.setitem(
      classes.CLASS_TABLES,
      config.data.classes,
      dataclasses.replace(table, void=None),
  )
  with pytest.raises(
      ValueError,
      match=r"cross_entropy_on_void=False .* has no void class\. Set"
      r" --config\.loss\.cross_entropy_on_void=True",
  ):
    config_checks.check_model_and_steps(config, sharding.make_mesh())


def _loss_config(**overrides):
  config = dict(
      gan="lsgan",
      gan_weight=1.0,
      feature_matching_weight=10.0,
      cross_entropy_weight=2.0,
      l1_hole_weight=3.0,
      l1_known_weight=0.5,
      cross_entropy_on_void=True,
      vgg_weight=0.0,
      lpips_weight=0.0,
  )
  config.update(overrides)
  return ml_collections.ConfigDict(config)


# Discriminator outputs on real and generated samples that differ, so that
# every term is nonzero: feature L1 2.0, LSGAN generator loss
# (0.5 - 1)^2 = 0.25. Each term differs from the others, and each weight of
# `_loss_config` from the others, so a dropped or swapped weight changes the
# total.
_REAL = [[jnp.zeros([1, 2]), jnp.ones([1, 1])]]
_FAKE = [[jnp.full([1, 2], 2.0), jnp.full([1, 1], 0.5)]]


def test_sg_generator_loss_weights_its_terms():
  image = jnp.zeros([1, 1, 2, 3])
  generated = jnp.array([[[[0.5] * 3, [0.125] * 3]]])
  mask = jnp.array([[[[1.0], [0.0]]]])
  total, metrics = losses.sg_generator_loss(
      generated, image, mask, _FAKE, _REAL, _loss_config()
  )
  np.testing.assert_allclose(metrics["l1_hole"], 0.5)
  np.testing.assert_allclose(metrics["l1_known"], 0.125)
  np.testing.assert_allclose(metrics["g_gan"], 0.25)
  np.testing.assert_allclose(metrics["feature_matching"], 2.0)
  np.testing.assert_allclose(
      total, 3.0 * 0.5 + 0.5 * 0.125 + 1.0 * 0.25 + 10.0 * 2.0
  )


def test_sp_generator_loss_weights_its_terms():
  logits = jnp.zeros([1, 1, 1, 4])
  labels = jnp.zeros([1, 1, 1], jnp.int32)
  mask = jnp.ones([1, 1, 1, 1])
  total, metrics = losses.sp_generator_loss(
      logits, labels, mask, _FAKE, _REAL, _loss_config()
  )
  np.testing.assert_allclose(metrics["cross_entropy_hole"], np.log(4.0), rtol=1e-6)
  np.testing.assert_allclose(metrics["g_gan"], 0.25)
  np.testing.assert_allclose(metrics["feature_matching"], 2.0)
  np.testing.assert_allclose(
      total, 2.0 * np.log(4.0) + 1.0 * 0.25 + 10.0 * 2.0, rtol=1e-6
  )
