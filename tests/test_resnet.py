"""The segmenter's backbone from torchvision's ResNet-50, without torch.

tests/fixtures/torch/resnet50_reference.npz holds what torchvision's
ResNet-50 computed, under torch, from weights and images that
tests/torch_references.py makes from fixed seeds
(scripts/make_torch_fixtures.py), its last stage dilated as the segmenter's.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import default
from configs import synthetic
from spg_jax.models import segmenter
from spg_jax.pretrained import conversion
from spg_jax.pretrained import converted
from spg_jax.pretrained import imagenet
from spg_jax.pretrained import resnet
from spg_jax.runtime import sharding
from spg_jax.training import config_checks
from spg_jax.training import steps

import torch_references

_SEED = 4  # scripts/make_torch_fixtures.py's RESNET_SEED


@pytest.fixture(scope="module")
def reference():
  return torch_references.reference("resnet50_reference.npz")


@pytest.fixture(scope="module")
def params():
  state = torch_references.random_weights(resnet.torch_shapes(), _SEED)
  return resnet.params_from_torch(state, "seeded")


def test_the_layout_is_torchvisions(reference):
  published = torch_references.published_shapes(reference)
  assert resnet.torch_shapes() == published


def test_the_backbone_computes_torchvisions_resnet50(reference, params):
  """Whatever the mask channel holds: its stem weights start at 0."""
  first, _ = torch_references.images(_SEED)
  mask = np.random.default_rng(0).integers(0, 2, first.shape[:3] + (1,))
  inputs = jnp.concatenate(
      [imagenet.normalise(first), mask.astype(np.float32)], axis=-1)
  stage1, stage4 = jax.jit(resnet.backbone().apply)({"params": params},
                                                    inputs)
  assert stage1.shape == (4, 12, 16, 256)
  assert stage4.shape == (4, 3, 4, 2048)
  for name, output in (("stage1", stage1), ("stage4", stage4)):
    # Seen: at most 1.1e-5 apart, on values up to 11.
    np.testing.assert_allclose(output[0, ..., ::16],
                               reference[name].transpose(1, 2, 0), rtol=0,
                               atol=1e-4, err_msg=name)
    np.testing.assert_allclose(np.mean(output), reference[f"mean/{name}"],
                               rtol=1e-4, err_msg=name)


def test_the_segmenter_starts_from_the_converted_backbone(params):
  config = default.get_config().model.segmenter
  config.backbone_weights = "imagenet"
  network = segmenter.Segmenter(num_classes=3, config=config)
  image = jnp.asarray(torch_references.images(_SEED)[0][:1])
  mask = jnp.zeros(image.shape[:3] + (1,))
  variables = jax.eval_shape(network.init, jax.random.key(0), image, mask)
  backbone = variables["params"]["DeepLabV3Plus_0"]["backbone"]
  assert jax.tree.map(np.shape, backbone) == jax.tree.map(np.shape, params)
  assert segmenter.uses_pretrained_backbone(config)
  config.backbone_weights = ""
  assert not segmenter.uses_pretrained_backbone(config)


def test_a_missing_array_is_named_with_its_file():
  state = torch_references.random_weights(resnet.torch_shapes(), _SEED)
  del state["layer4.2.bn3.running_var"]
  with pytest.raises(conversion.WeightsError,
                     match=r"resnet50.pth is not the expected weights:"
                     r" missing \['layer4.2.bn3.running_var'\]"):
    resnet.params_from_torch(state, "resnet50.pth")


def _resnet50_config(backbone_weights):
  config = default.with_segmenter(synthetic.get_config("tiny"))
  config.model.segmenter.update(stage_sizes=resnet.STAGE_SIZES,
                                base_features=resnet.BASE_FEATURES,
                                output_stride=16,
                                backbone_weights=backbone_weights)
  return config


def test_a_run_configured_for_imagenet_starts_its_backbone_there(
    params, tmp_path, monkeypatch):
  converted.save("resnet50", params, tmp_path)
  monkeypatch.setenv("SPG_JAX_WEIGHTS", str(tmp_path))
  by_cache = steps.load_backbone(_resnet50_config("imagenet"))
  by_path = steps.load_backbone(
      _resnet50_config(str(tmp_path / "resnet50.msgpack")))
  assert steps.load_backbone(_resnet50_config("")) is None
  config = _resnet50_config("imagenet")
  network = segmenter.Segmenter(3, config.model.segmenter)
  image = jnp.zeros((1, 32, 32, 3))
  variables = jax.eval_shape(network.init, jax.random.key(0), image,
                             jnp.zeros((1, 32, 32, 1)))
  started = segmenter.with_backbone(variables, by_cache)
  for loaded in (by_cache, by_path):
    for got, want in zip(
        jax.tree.leaves(started["params"]["DeepLabV3Plus_0"]["backbone"]),
        jax.tree.leaves(loaded), strict=True):
      np.testing.assert_array_equal(got, want)
  assert jax.tree.structure(started) == jax.tree.structure(variables)
  with pytest.raises(ValueError, match="not shaped as the segmenter's"):
    segmenter.with_backbone(variables, {"stem": by_cache["stem"]})


def test_imagenet_weights_on_a_smaller_backbone_are_refused():
  config = _resnet50_config("imagenet")
  config.model.segmenter.stage_sizes = (2, 2, 2, 2)
  with pytest.raises(ValueError, match=r"ResNet-50, which has"
                     r" stage_sizes=\(3, 4, 6, 3\) and base_features=64, but"
                     r" the config has \(2, 2, 2, 2\) and 64"):
    config_checks.check_model_and_steps(config, sharding.make_mesh())
