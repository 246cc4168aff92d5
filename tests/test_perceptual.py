"""Tests of SG-Net's perceptual terms and of the converted weights they load."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import default
from configs import synthetic
from spg_jax.models import spg
from spg_jax.pretrained import conversion
from spg_jax.pretrained import converted
from spg_jax.pretrained import lpips
from spg_jax.pretrained import published
from spg_jax.pretrained import imagenet
from spg_jax.pretrained import vgg
from spg_jax.runtime import sharding
from spg_jax.training import losses
from spg_jax.training import perceptual
from spg_jax.training import steps

# Images of 32 x 48: LPIPS' smallest height and not square.
_HEIGHT, _WIDTH = 32, 48


def _loss_config(cache, **overrides):
  config = synthetic.get_config("tiny").loss
  config.lpips_weights = str(cache / "lpips.msgpack")
  config.vgg19_weights = str(cache / "vgg19.msgpack")
  config.update(overrides)
  return config


def _images():
  rng = np.random.default_rng(0)
  shape = (2, _HEIGHT, _WIDTH, 3)
  image = rng.uniform(-1, 1, shape).astype(np.float32)
  generated = np.clip(image + rng.normal(0, 0.3, shape), -1, 1)
  return jnp.asarray(generated, jnp.float32), jnp.asarray(image)


def test_terms_are_lpips_and_weighted_vgg_distances(seeded_weights_dir):
  config = _loss_config(seeded_weights_dir, lpips_weight=2.0, vgg_weight=3.0,
                        vgg_taps=("relu2_1", "relu1_1"),
                        vgg_tap_weights=(0.5, 4.0))
  params = perceptual.load_params(config)
  generated, image = _images()
  values = perceptual.terms(params, generated, image, config)
  distances = lpips.LPIPS().apply({"params": params["lpips"]}, generated,
                                  image)
  np.testing.assert_allclose(values["lpips"], np.mean(distances), rtol=1e-6)
  taps = {
      tap: [vgg.VGG19Features(taps=(tap,)).apply(
          {"params": params["vgg"]}, imagenet.normalise(batch))[0]
            for batch in (generated, image)]
      for tap in ("relu2_1", "relu1_1")
  }
  expected = sum(weight * np.mean(np.abs(fake - real))
                 for weight, (fake, real) in zip(
                     (0.5, 4.0), (taps["relu2_1"], taps["relu1_1"])))
  np.testing.assert_allclose(values["vgg"], expected, rtol=1e-5)
  assert perceptual.weights(config) == {"lpips": 2.0, "vgg": 3.0}


def test_sg_net_loss_adds_each_term_by_its_weight(seeded_weights_dir):
  config = _loss_config(seeded_weights_dir, lpips_weight=2.0, vgg_weight=3.0)
  generated, image = _images()
  mask = jnp.zeros((*generated.shape[:3], 1))
  outputs = [[jnp.zeros((1, 2)), jnp.ones((1, 1))]]
  without, _ = losses.sg_generator_loss(
      generated, image, mask, outputs, outputs, config,
      perceptual_terms={"lpips": jnp.array(0.0), "vgg": jnp.array(0.0)})
  total, metrics = losses.sg_generator_loss(
      generated, image, mask, outputs, outputs, config,
      perceptual_terms={"lpips": jnp.array(0.25), "vgg": jnp.array(0.125)})
  np.testing.assert_allclose(total - without, 2.0 * 0.25 + 3.0 * 0.125)
  assert metrics["lpips"] == 0.25 and metrics["vgg"] == 0.125


def test_terms_at_weight_zero_load_and_compute_nothing(tmp_path):
  config = _loss_config(tmp_path)  # no files there
  assert perceptual.enabled_terms(config) == ()
  assert perceptual.load_params(config) == {}
  assert perceptual.terms({}, *_images(), config) == {}


def test_missing_weights_say_which_command_makes_them(tmp_path):
  config = _loss_config(tmp_path, lpips_weight=1.0)
  with pytest.raises(
      published.WeightsUnavailableError,
      match=f"No converted weights of LPIPS v0.1 on AlexNet at"
      f" {tmp_path / 'lpips.msgpack'}. Make them with `spg-weights"
      r" --names=lpips` \(it downloads alexnet-owt-7be5be79.pth,"
      r" lpips_v0.1_alex.pth"):
    perceptual.load_params(config)


def test_a_damaged_or_foreign_file_is_named(seeded_weights_dir, tmp_path):
  data = (seeded_weights_dir / "lpips.msgpack").read_bytes()
  (tmp_path / "cut.msgpack").write_bytes(data[: len(data) // 2])
  with pytest.raises(conversion.WeightsError,
                     match=f"{tmp_path / 'cut.msgpack'} is not a converted"
                     " weights file .*damaged or cut short"):
    converted.load("lpips", str(tmp_path / "cut.msgpack"))
  with pytest.raises(conversion.WeightsError,
                     match=r"vgg19.msgpack does not hold LPIPS v0.1 on"
                     r" AlexNet: lin0 missing; lin1 missing; .* net missing;"
                     r" features_0 unexpected; .* and 14 more"):
    converted.load("lpips", str(seeded_weights_dir / "vgg19.msgpack"))


@pytest.mark.parametrize("overrides, message", [
    (dict(vgg_taps=("relu1_1", "pool5")), r"unknown \['pool5'\]"),
    (dict(vgg_tap_weights=(1.0,)), "has 1 weights for 5 taps"),
    (dict(lpips_weight=1.0), "needs images of at least 31x31"),
])
def test_bad_perceptual_settings_are_refused(tmp_path, overrides, message):
  with pytest.raises(ValueError, match=message):
    perceptual.check_config(_loss_config(tmp_path, **overrides), 16)


def test_sg_step_with_lpips_lowers_it_on_a_fixed_batch(seeded_weights_dir):
  """A tiny SG-Net trained by LPIPS alone (seeded AlexNet converted by the
  real converter; every other term's weight 0): the step passes the frozen
  weights in, and the term falls at every one of 12 steps."""
  config = synthetic.get_config("tiny")
  config.data.image_size = _HEIGHT
  config.batch_size = 2
  config.loss.update(lpips_weight=10.0, l1_hole_weight=0.0,
                     l1_known_weight=0.0, gan_weight=0.0,
                     feature_matching_weight=0.0)
  config.schedule.sg = default.phase_schedule(100, decay_steps=1)
  config.loss.lpips_weights = str(seeded_weights_dir / "lpips.msgpack")
  mesh = sharding.make_mesh(jax.devices()[:2])
  networks = spg.Networks.from_config(config)
  state = sharding.replicate(
      steps.create_train_state(config, networks, jax.random.key(0)), mesh)
  step = steps.make_train_steps(config, networks, mesh,
                                perceptual.load_params(config.loss))["sg"]
  _, image = _images()
  mask = np.zeros((2, _HEIGHT, _WIDTH, 1), np.float32)
  mask[0, 4:20, 8:30] = 1.0
  mask[1, 10:30, 20:44] = 1.0
  batch = sharding.shard_batch({
      "image": np.asarray(image),
      "label": np.random.default_rng(1).integers(
          0, networks.num_classes, (2, _HEIGHT, _WIDTH)).astype(np.int32),
      "mask": mask,
  }, mesh)
  values = []
  for _ in range(12):
    state, metrics = step(state, batch)
    values.append(float(metrics["sg/lpips"]))
  # Seen: 0.186 falling to 0.159.
  assert np.all(np.diff(values) < 0), values
  assert values[-1] < 0.9 * values[0], values


def test_a_perceptual_config_without_its_weights_builds_no_step(tmp_path):
  config = synthetic.get_config("tiny")
  config.loss.vgg_weight = 1.0
  networks = spg.Networks.from_config(config)
  with pytest.raises(ValueError, match=r"perceptual terms \['vgg'\], but"):
    steps.make_train_steps(config, networks, sharding.make_mesh())
