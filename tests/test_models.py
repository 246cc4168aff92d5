"""Tests of the generators, discriminators and the end-to-end completion."""

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from spg_jax.models import discriminators
from spg_jax.models import generators
from spg_jax.models import layers
from spg_jax.models import spg

from configs import synthetic

_SIZE = 16
_CLASSES = 8


def _generator_config(**overrides) -> ml_collections.ConfigDict:
  config = dict(
      base_features=4,
      num_downsamplings=2,
      num_blocks=1,
      dilation=2,
      norm="instance",
      upsampling="transpose",
  )
  config.update(overrides)
  return ml_collections.ConfigDict(config)


def _inputs(batch: int = 2):
  rng = np.random.default_rng(0)
  image = rng.uniform(-1, 1, [batch, _SIZE, _SIZE, 3]).astype(np.float32)
  labels = rng.integers(0, _CLASSES, [batch, _SIZE, _SIZE])
  mask = np.zeros([batch, _SIZE, _SIZE, 1], np.float32)
  mask[:, 4:10, 3:12] = 1.0
  one_hot = jax.nn.one_hot(labels, _CLASSES)
  return jnp.asarray(image), jnp.asarray(labels), one_hot, jnp.asarray(mask)


@pytest.mark.parametrize("upsampling", generators.UPSAMPLINGS)
def test_sp_net_gives_logits_per_class_at_input_size(upsampling):
  image, _, one_hot, mask = _inputs()
  net = generators.SPNet(_CLASSES, _generator_config(upsampling=upsampling))
  params = net.init(jax.random.key(0), image, one_hot, mask)
  logits = net.apply(params, image, one_hot, mask)
  assert logits.shape == (2, _SIZE, _SIZE, _CLASSES)
  assert logits.dtype == jnp.float32


def test_sg_net_output_lies_in_image_range():
  image, _, one_hot, mask = _inputs()
  net = generators.SGNet(_generator_config())
  params = net.init(jax.random.key(0), image, one_hot, mask)
  # Large inputs push tanh to its limits; the output must stay in [-1, 1].
  output = net.apply(params, 100.0 * image, one_hot, mask)
  assert output.shape == image.shape
  assert float(jnp.min(output)) >= -1.0 and float(jnp.max(output)) <= 1.0


def test_networks_never_read_the_hole():
  image, _, one_hot, mask = _inputs()
  net = generators.SPNet(_CLASSES, _generator_config())
  params = net.init(jax.random.key(0), image, one_hot, mask)
  scrambled_image = jnp.where(mask > 0, -image, image)
  scrambled_labels = jnp.where(mask > 0, jnp.roll(one_hot, 1, axis=-1), one_hot)
  np.testing.assert_array_equal(
      net.apply(params, image, one_hot, mask),
      net.apply(params, scrambled_image, scrambled_labels, mask),
  )


def test_generator_refuses_sizes_not_divisible_by_its_downsampling():
  net = generators.GlobalGenerator(3, **_generator_config())
  with pytest.raises(ValueError, match="divisible by 4"):
    net.init(jax.random.key(0), jnp.zeros([1, 18, 16, 3]))


def test_unknown_norm_is_refused_with_the_choices():
  net = generators.GlobalGenerator(3, **_generator_config(norm="batch"))
  with pytest.raises(ValueError, match="instance"):
    net.init(jax.random.key(0), jnp.zeros([1, 16, 16, 3]))


def test_composites_keep_known_pixels_and_labels_exactly():
  image, _, one_hot, mask = _inputs()
  generated = jnp.full_like(image, 0.123)
  composite = generators.composite_image(generated, image, mask)
  known = np.broadcast_to(np.asarray(mask) == 0, image.shape)
  np.testing.assert_array_equal(np.asarray(composite)[known], np.asarray(image)[known])
  np.testing.assert_array_equal(np.asarray(composite)[~known], np.float32(0.123))
  probabilities = jax.nn.softmax(jnp.ones_like(one_hot))
  labels = generators.composite_labels(probabilities, one_hot, mask)
  known = np.broadcast_to(np.asarray(mask) == 0, one_hot.shape)
  np.testing.assert_array_equal(np.asarray(labels)[known], np.asarray(one_hot)[known])
  np.testing.assert_allclose(np.asarray(labels)[~known], 1 / _CLASSES)


def test_straight_through_one_hot_is_hard_forward_soft_backward():
  logits = jnp.array([[0.1, 2.0, -1.0]])
  probabilities = jax.nn.softmax(logits)
  hard = generators.straight_through_one_hot(probabilities)
  np.testing.assert_array_equal(hard, [[0.0, 1.0, 0.0]])
  weights = jnp.array([1.0, 2.0, 3.0])
  grad = jax.grad(
      lambda p: jnp.sum(generators.straight_through_one_hot(p) * weights)
  )(probabilities)
  np.testing.assert_allclose(grad, [[1.0, 2.0, 3.0]])


def test_multiscale_discriminator_returns_features_and_logits_per_scale():
  disc = discriminators.MultiScaleDiscriminator(
      num_scales=2, base_features=4, num_layers=3
  )
  x = jnp.zeros([2, 32, 32, 5])
  outputs = disc.apply(disc.init(jax.random.key(0), x), x)
  assert len(outputs) == 2
  # Stride-2 layers: the first conv and num_layers - 1 more.
  assert [o[-1].shape for o in outputs] == [(2, 4, 4, 1), (2, 2, 2, 1)]
  assert [len(o) for o in outputs] == [5, 5]
  assert outputs[0][1].shape[-1] == 8


def test_downsampling_between_scales_averages_the_pixels_of_each_window():
  x = jnp.arange(16.0).reshape(1, 4, 4, 1)
  # Windows centred on rows and columns 0 and 2; the first holds 2 of them.
  expected = [
      [np.mean([0, 1, 4, 5]), np.mean([1, 2, 3, 5, 6, 7])],
      [np.mean([4, 5, 8, 9, 12, 13]), np.mean([5, 6, 7, 9, 10, 11, 13, 14, 15])],
  ]
  np.testing.assert_allclose(
      discriminators.downsample(x)[0, ..., 0], expected, rtol=1e-6
  )


@pytest.mark.parametrize(
    "shape", [(2, 64, 64, 12), (2, 7, 5, 3), (1, 1, 1, 2), (3, 6, 9, 4)]
)
def test_downsampling_equals_average_pooling_and_its_gradient(shape):
  def average_pool(x):  # PyTorch's avg_pool2d(x, 3, 2, 1, False) in flax.
    return flax.linen.avg_pool(
        x, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)),
        count_include_pad=False,
    )

  x = jax.random.normal(jax.random.key(0), shape)
  np.testing.assert_allclose(
      discriminators.downsample(x), average_pool(x), atol=1e-6
  )
  cotangent = jax.random.normal(jax.random.key(1), average_pool(x).shape)

  def input_gradient(pool):
    return jax.grad(lambda x: jnp.sum(pool(x) * cotangent))(x)

  np.testing.assert_allclose(
      input_gradient(discriminators.downsample),
      input_gradient(average_pool),
      atol=1e-6,
  )


def test_complete_keeps_known_pixels_and_labels_exactly():
  config = synthetic.get_config("tiny")
  config.data.image_size = _SIZE
  networks = spg.Networks.from_config(config)
  params = networks.init(jax.random.key(0), _SIZE)
  image, labels, one_hot, mask = _inputs()
  predicted, output = networks.complete(params, image, one_hot, mask)
  known = np.asarray(mask[..., 0]) == 0
  np.testing.assert_array_equal(np.asarray(predicted)[known], np.asarray(labels)[known])
  np.testing.assert_array_equal(np.asarray(output)[known], np.asarray(image)[known])
  assert not np.array_equal(np.asarray(output)[~known], np.asarray(image)[~known])
  assert predicted.min() >= 0 and predicted.max() < _CLASSES


@pytest.mark.parametrize("form", layers.UPSAMPLING_FORMS)
@pytest.mark.parametrize("dtype, tolerance", [(jnp.float32, 1e-5), (jnp.bfloat16, 0.05)])
def test_upsampling_forms_equal_flax_conv_transpose(form, dtype, tolerance):
  """Same parameters from the same seed, same outputs, same input gradients."""
  x = jnp.asarray(np.random.default_rng(0).normal(size=[2, 5, 7, 6]), jnp.float32)
  reference = flax.linen.ConvTranspose(
      4, (3, 3), strides=(2, 2), padding="SAME", dtype=dtype
  )
  upsampling = layers.UpsamplingConvTranspose(4, dtype=dtype, form=form)
  params = reference.init(jax.random.key(1), x)
  jax.tree.map(
      np.testing.assert_array_equal, params, upsampling.init(jax.random.key(1), x)
  )
  params = jax.tree.map(lambda p: p + 0.3, params)  # a non-zero bias too
  expected = reference.apply(params, x).astype(jnp.float32)
  assert upsampling.apply(params, x).shape == (2, 10, 14, 4)
  np.testing.assert_allclose(
      upsampling.apply(params, x).astype(jnp.float32), expected,
      atol=tolerance, rtol=tolerance,
  )
  grads = [
      jax.grad(lambda p, m=m: jnp.sum(m.apply(p, x).astype(jnp.float32) ** 2))(params)
      for m in (reference, upsampling)
  ]
  jax.tree.map(
      lambda a, b: np.testing.assert_allclose(a, b, rtol=tolerance * 10, atol=tolerance * 10),
      *grads,
  )


@pytest.mark.parametrize("guidance", generators.GUIDANCES)
def test_sg_net_and_its_discriminator_read_labels_only_when_guided(guidance):
  """With guidance 'none' (the paper's ablation) neither SG-Net nor its
  discriminator reads the label map: the gradient of what they output with
  respect to the labels is exactly 0. Guided by labels, both depend on
  them."""
  config = synthetic.get_config("tiny")
  config.model.guidance = guidance
  networks = spg.Networks.from_config(config)
  params = networks.init(jax.random.key(0), _SIZE)
  image, _, one_hot, mask = _inputs()

  def outputs(labels):
    _, output = networks.render(params["sg"], image, labels, mask)
    judged = networks.sg_disc.apply(
        params["sg_disc"], networks.sg_disc_input(labels, mask, output)
    )
    return jnp.sum(output) + sum(jnp.sum(x) for x in jax.tree.leaves(judged))

  gradient = np.asarray(jax.grad(outputs)(one_hot))
  if guidance == "none":
    np.testing.assert_array_equal(gradient, 0.0)
  else:
    assert np.abs(gradient).max() > 0


def test_unknown_guidance_is_refused_with_the_choices():
  config = synthetic.get_config("tiny")
  config.model.guidance = "edges"
  with pytest.raises(ValueError, match="guidance 'edges'.*'labels', 'none'"):
    spg.Networks.from_config(config)


@pytest.mark.parametrize("label_injection", generators.LABEL_INJECTIONS)
def test_labels_reach_the_decoder_only_when_injected_there(label_injection):
  """With the input convolution's label weights zeroed, SG-Net's output
  depends on the labels only through the decoder's side input: exactly not
  at all with 'input', and with 'decoder' in every example."""
  image, _, one_hot, mask = _inputs()
  net = generators.SGNet(_generator_config(),
                         label_injection=label_injection)
  params = flax.core.unfreeze(net.init(jax.random.key(0), image, one_hot,
                                       mask))
  first_conv = params["params"]["GlobalGenerator_0"]["ReflectConv_0"]
  kernel = first_conv["Conv_0"]["kernel"]
  first_conv["Conv_0"]["kernel"] = kernel.at[:, :, 3:3 + _CLASSES].set(0.0)

  gradient = np.asarray(jax.grad(
      lambda labels: jnp.sum(net.apply(params, image, labels, mask) ** 2)
  )(one_hot))
  per_example = np.abs(gradient).reshape(len(gradient), -1).max(axis=1)
  if label_injection == "input":
    np.testing.assert_array_equal(per_example, 0.0)
  else:
    assert np.all(per_example > 0)


def test_unknown_label_injection_is_refused_with_the_choices():
  config = synthetic.get_config("tiny")
  config.model.label_injection = "everywhere"
  networks = spg.Networks.from_config(config)
  with pytest.raises(ValueError, match="'everywhere'.*'input', 'decoder'"):
    networks.init(jax.random.key(0), _SIZE)
