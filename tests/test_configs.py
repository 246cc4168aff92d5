"""Every shipped config, and its tiny variant, passes the checks training runs."""

import pathlib

import jax
import pytest

from configs import default
from configs import synthetic
from spg_jax.data import classes
from spg_jax.data import labelling
from spg_jax.training import loop
from spg_jax.training import schedules

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
def test_paper_configs_use_the_papers_imagenet_networks(name):
  config = _get_config(name, None)
  assert (config.loss.lpips_weight, config.loss.vgg_weight) == (10.0, 0.0)
  assert config.model.segmenter.backbone_weights == "imagenet"
  # A tiny backbone cannot take ResNet-50's weights; the main job downloads
  # nothing.
  assert _get_config(name, "tiny").model.segmenter.backbone_weights == ""
  main_job = synthetic.get_config()
  assert main_job.loss.lpips_weight == 0.0
  assert main_job.model.segmenter.backbone_weights == ""


@pytest.mark.parametrize("name", ["cityscapes", "helen"])
def test_paper_configs_follow_the_papers_schedule(name):
  """Each network 200 epochs, its rate decaying over the last 100, then both
  100 epochs (our choice of rate: from the peak again, decaying over the last
  50), all at pix2pixHD's 2e-4."""
  config = _get_config(name, None)
  train_size = {"cityscapes": 2975, "helen": 2000}[name]

  def epochs(num_steps):
    return num_steps * config.batch_size / train_size

  # The segmenter's length is ours: as long as each network's.
  lengths = {
      "seg": (200, 100), "sp": (200, 100), "sg": (200, 100), "joint": (100, 50)
  }
  for phase, (phase_epochs, decay_epochs) in lengths.items():
    phase_config = config.schedule[phase]
    assert epochs(phase_config.steps) == pytest.approx(phase_epochs, abs=0.01)
    assert epochs(phase_config.decay_steps) == pytest.approx(
        decay_epochs, abs=0.01
    )
    assert phase_config.learning_rate == 2e-4
  assert config.data.image_size == 256
  assert config.known_labels == "segmenter"
  assert config.model.segmenter.stage_sizes == (3, 4, 6, 3)
  # SP-Net's last sp update runs at the decay's last rate (float32's
  # 1 - count / decay_steps keeps about 3 digits of it), its first joint
  # update at the peak again.
  sp_rate = schedules.learning_rate_schedules(config.schedule)["sp"]
  sp_steps = config.schedule.sp.steps
  assert float(sp_rate(sp_steps - 1)) == pytest.approx(
      2e-4 / config.schedule.sp.decay_steps, rel=1e-3
  )
  assert float(sp_rate(sp_steps)) == pytest.approx(2e-4, rel=1e-6)


def test_label_maps_cover_their_class_tables():
  for name, label_map in classes.LABEL_MAPS.items():
    table = classes.get_class_table(label_map.classes)
    targets = {class_id for _, class_id in label_map.targets}
    assert targets == set(range(table.num_classes)), name
    assert labelling.UNMAPPED not in targets


def test_steps_for_epochs_rounds_up():
  assert default.steps_for_epochs(200, 2975, 8) == 74375
  assert default.steps_for_epochs(1, 10, 4) == 3


def _set_key(config, dotted_key, value):
  *parents, key = dotted_key.split(".")
  for parent in parents:
    config = config[parent]
  config[key] = value


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"known_labels": "oracle"},
         "Unknown config.known_labels 'oracle'; choose one of"
         r" \('ground_truth', 'segmenter'\)"),
        ({"schedule.seg.steps": 0},
         "config.known_labels='segmenter' needs a segmenter, but"
         " config.schedule.seg.steps is 0"),
        ({"model.segmenter.output_stride": 4},
         r"output_stride=4 must be one of \(16, 8\)"),
        ({"data.image_size": 40, "model.sp_generator.num_downsamplings": 3,
          "model.sg_generator.num_downsamplings": 3},
         "config.data.image_size=40 must be a multiple of 16, which the"
         " segmenter needs"),
        ({"model.guidance": "edges"}, "Unknown config.model.guidance 'edges'"),
    ],
)
def test_bad_segmenter_and_guidance_settings_are_refused(changes, message):
  config = default.get_config()
  for key, value in changes.items():
    _set_key(config, key, value)
  mesh = jax.sharding.Mesh(jax.devices()[:1], ("batch",))
  with pytest.raises(ValueError, match=message):
    loop.validate_config(config, mesh)


def test_a_run_without_a_segmenter_may_use_the_ground_truth():
  config = default.get_config()
  config.schedule.seg.steps = 0
  config.known_labels = "ground_truth"
  loop.validate_config(config, jax.sharding.Mesh(jax.devices()[:1], ("batch",)))
