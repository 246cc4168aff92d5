"""Every shipped config, and its tiny variant, passes the checks training runs."""

import pathlib

import jax
import pytest

from configs import default
from spg_jax.data import classes
from spg_jax.data import labelling
from spg_jax.training import loop
from spg_jax.training import steps

_CONFIG_NAMES = sorted(
    path.stem
    for path in (pathlib.Path(__file__).parents[1] / "configs").glob("*.py")
    if path.stem != "__init__"
)


def _get_config(name, variant):
  module = __import__(f"configs.{name}", fromlist=["get_config"])
  return module.get_config(variant)


@pytest.mark.parametrize("name", _CONFIG_NAMES)
@pytest.mark.parametrize("variant", [None, "tiny"])
def test_config_is_valid(name, variant):
  config = _get_config(name, variant)
  mesh = jax.sharding.Mesh(jax.devices()[:1], ("batch",))
  loop.validate_config(config, mesh)


@pytest.mark.parametrize("name", ["cityscapes", "helen"])
def test_paper_configs_train_each_network_200_epochs(name):
  config = _get_config(name, None)
  train_sizes = {"cityscapes": 2975, "helen": 2000}
  epochs = config.schedule.sp_steps * config.batch_size / train_sizes[name]
  assert epochs == pytest.approx(200, abs=0.01)
  assert config.schedule.sg_steps == config.schedule.sp_steps
  assert config.optimizer.decay_fraction == 0.5  # The last 100 epochs.
  assert config.data.image_size == 256
  assert steps.total_steps(config.schedule) > 0


def test_label_maps_cover_their_class_tables():
  for name, label_map in classes.LABEL_MAPS.items():
    table = classes.get_class_table(label_map.classes)
    targets = {class_id for _, class_id in label_map.targets}
    assert targets == set(range(table.num_classes)), name
    assert labelling.UNMAPPED not in targets


def test_steps_for_epochs_rounds_up():
  assert default.steps_for_epochs(200, 2975, 8) == 74375
  assert default.steps_for_epochs(1, 10, 4) == 3
