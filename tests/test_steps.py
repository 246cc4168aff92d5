"""Tests of the training state and the data-parallel steps."""

import functools

import jax
import numpy as np
import optax
import orbax.checkpoint as ocp
import pytest

from configs import default
from configs import synthetic
from spg_jax.data import classes
from spg_jax.models import spg
from spg_jax.runtime import sharding
from spg_jax.training import checkpoints
from spg_jax.training import losses
from spg_jax.training import schedules
from spg_jax.training import steps

_SIZE = 16
_GLOBAL_BATCH = 4
# Batches are _SIZE x _WIDTH: not square, as images seldom are.
_WIDTH = 24
# Each example's hole (top, bottom, left, right): so different in size and
# place that on 4 devices one device's share holds a hole 47 times as large
# as another's.
_HOLES = ((1, 15, 2, 22), (3, 9, 5, 12), (12, 14, 18, 21), (0, 4, 0, 24))
_VOID = 0


def _tiny_config():
  """The tiny config at _SIZE, its void class left out of SP-Net's
  cross-entropy, so that hole pixel counts differ between devices even more
  and the steps' tests cover the exclusion."""
  config = default.with_segmenter(synthetic.get_config("tiny"))
  config.data.image_size = _SIZE
  config.batch_size = _GLOBAL_BATCH
  config.loss.cross_entropy_on_void = False
  assert (
      classes.get_class_table(config.data.classes).void_id == _VOID
  ), "the tests' labels take class 0 for void"
  return config


def _batch():
  rng = np.random.default_rng(0)
  mask = np.zeros([_GLOBAL_BATCH, _SIZE, _WIDTH, 1], np.float32)
  for example_mask, (top, bottom, left, right) in zip(mask, _HOLES):
    example_mask[top:bottom, left:right] = 1.0
  return {
      "image": rng.uniform(-1, 1, [_GLOBAL_BATCH, _SIZE, _WIDTH, 3]).astype(
          np.float32
      ),
      "label": rng.integers(0, 8, [_GLOBAL_BATCH, _SIZE, _WIDTH]).astype(
          np.int32
      ),
      "mask": mask,
  }


def _one_step(config, phase, devices, batch=None):
  """One step of `phase` from a fresh state, on `batch` (default
  `_batch()`); the new state and metrics."""
  mesh = sharding.make_mesh(devices)
  networks = spg.Networks.from_config(config)
  state = sharding.replicate(
      steps.create_train_state(config, networks, jax.random.key(0)), mesh
  )
  step = steps.make_train_steps(config, networks, mesh)[phase]
  batch = _batch() if batch is None else batch
  state, metrics = step(state, sharding.shard_batch(batch, mesh))
  return jax.device_get(state), jax.device_get(metrics)


@functools.cache
def _tiny_step_on_one_device(phase):
  """`_one_step` of `_tiny_config()` on one device, compiled once per phase
  for all the tests that read it (in one process: the tests that read the
  joint step share an xdist group, "tiny_joint_step")."""
  return _one_step(_tiny_config(), phase, jax.devices()[:1])


def _gradients(state, config):
  """Each network's gradient in the step that made `state` from a fresh one:
  after one update Adam's first moment is (1 - b1) times the gradient."""
  return {
      name: jax.tree.map(
          lambda mu: mu / (1.0 - config.optimizer.b1),
          optax.tree_utils.tree_get(state_of_network.opt_state, "mu"),
      )
      for name, state_of_network in (
          ("seg", state.seg),
          ("sp", state.sp),
          ("sg", state.sg),
          ("sp_disc", state.sp_disc),
          ("sg_disc", state.sg_disc),
      )
      if state_of_network is not None
  }


def _flat(tree):
  return np.concatenate([np.ravel(leaf) for leaf in jax.tree.leaves(tree)])


def _relative_error(value, reference):
  return np.linalg.norm(value - reference) / np.linalg.norm(reference)


@pytest.mark.parametrize("phase", schedules.PHASES)
def test_step_on_four_devices_equals_step_on_one(phase):
  """Every loss is normalised over the global batch, so the step, its
  gradients included, does not depend on how the batch is split, even when
  the devices' shares hold holes of very different sizes."""
  assert jax.device_count() == 4, "conftest.py should give 4 CPU devices"
  config = _tiny_config()
  state_1, metrics_1 = _tiny_step_on_one_device(phase)
  state_4, metrics_4 = _one_step(config, phase, jax.devices())
  initial = jax.device_get(
      spg.Networks.from_config(config).init(jax.random.key(0), _SIZE)
  )
  changed = {
      "seg": {"seg"},
      "sp": {"sp", "sp_disc"},
      "sg": {"sg", "sg_disc"},
      "joint": {"sp", "sp_disc", "sg", "sg_disc"},
  }[phase]
  gradients_1 = _gradients(state_1, config)
  gradients_4 = _gradients(state_4, config)
  for name in state_1.params:
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-5),
        state_1.params[name],
        state_4.params[name],
    )
    moved = not all(
        np.array_equal(a, b)
        for a, b in zip(
            jax.tree.leaves(initial[name]),
            jax.tree.leaves(state_1.params[name]),
        )
    )
    assert moved == (name in changed), name
    if moved:
      # Seen: at most 5e-6; per-device normalisation: 2.2 for SP-Net.
      assert _relative_error(
          _flat(gradients_4[name]), _flat(gradients_1[name])
      ) < 1e-4, name
  for key in metrics_1:
    np.testing.assert_allclose(metrics_1[key], metrics_4[key], rtol=1e-5, atol=1e-6)


def test_sp_step_leaves_void_out_of_the_hole_cross_entropy():
  """The step's cross-entropy is the hand-computed mean over the batch's
  hole pixels whose true class is not void (about 1 in 8 of them here)."""
  config = _tiny_config()
  _, metrics = _tiny_step_on_one_device("sp")
  networks = spg.Networks.from_config(config)
  params = networks.init(jax.random.key(0), _SIZE)
  batch = _batch()
  known = networks.known_label_map(
      params, batch["image"], batch["mask"], batch["label"]
  )
  logits = networks.sp.apply(
      params["sp"], batch["image"], known, batch["mask"]
  )
  per_pixel = np.asarray(
      optax.softmax_cross_entropy_with_integer_labels(logits, batch["label"])
  )
  hole = batch["mask"][..., 0] > 0
  scored = hole & (batch["label"] != _VOID)
  assert 0 < scored.sum() < hole.sum()
  np.testing.assert_allclose(
      metrics["sp/cross_entropy_hole"], per_pixel[scored].mean(), rtol=1e-5
  )
  assert not np.isclose(
      metrics["sp/cross_entropy_hole"], per_pixel[hole].mean(), rtol=1e-4
  )


@pytest.mark.parametrize("phase, scrambled", [("seg", "hole"), ("sp", "known")])
def test_a_step_never_reads_the_true_labels_its_network_must_not_see(
    phase, scrambled
):
  """The segmenter learns only the known region's labels, so its step is
  the same whatever the true labels in the hole; SP-Net takes its known
  labels from the segmenter (config.known_labels 'segmenter'), so its step
  is the same whatever the true labels outside the hole."""
  config = _tiny_config()
  assert config.known_labels == "segmenter"
  batch = _batch()
  hole = batch["mask"][..., 0] > 0
  region = hole if scrambled == "hole" else ~hole
  rng = np.random.default_rng(1)
  other = batch | {
      "label": np.where(
          region, rng.integers(0, 8, hole.shape), batch["label"]
      ).astype(np.int32)
  }
  assert (other["label"] != batch["label"]).sum() > region.sum() // 2
  state, metrics = _tiny_step_on_one_device(phase)
  state_other, metrics_other = _one_step(
      config, phase, jax.devices()[:1], other
  )
  for leaf, other_leaf in zip(
      jax.tree.leaves(state), jax.tree.leaves(state_other), strict=True
  ):
    np.testing.assert_array_equal(leaf, other_leaf)
  jax.tree.map(np.testing.assert_array_equal, metrics, metrics_other)


@pytest.mark.xdist_group("tiny_joint_step")
def test_joint_step_sends_sg_nets_loss_into_sp_net_straight_through():
  """In the joint phase SG-Net renders the one-hot argmax of SP-Net's
  labels, and its loss reaches SP-Net as if it had rendered the
  probabilities: SP-Net's joint gradient exceeds its sp-phase gradient (same
  state, same batch) by dL_sg/d(labels), taken at the one-hot labels,
  chained through the probabilities. A plain one-hot would send nothing."""
  config = _tiny_config()
  networks = spg.Networks.from_config(config)
  params = networks.init(jax.random.key(0), _SIZE)
  batch = {key: jax.numpy.asarray(value) for key, value in _batch().items()}
  image, mask = batch["image"], batch["mask"]
  known = networks.known_label_map(params, image, mask, batch["label"])

  def probabilities(sp_params):
    return networks.predict_labels(sp_params, image, known, mask)[1]

  def sg_loss(labels):
    generated, output = networks.render(params["sg"], image, labels, mask)
    fake = networks.sg_disc.apply(
        params["sg_disc"], networks.sg_disc_input(labels, mask, output)
    )
    real = networks.sg_disc.apply(
        params["sg_disc"],
        networks.sg_disc_input(networks.one_hot(batch["label"]), mask, image),
    )
    return losses.sg_generator_loss(
        generated, image, mask, fake, real, config.loss
    )[0]

  predicted, chain_through_probabilities = jax.vjp(probabilities, params["sp"])
  one_hot = networks.one_hot(jax.numpy.argmax(predicted, axis=-1))
  (expected,) = chain_through_probabilities(jax.grad(sg_loss)(one_hot))
  joint = _gradients(_tiny_step_on_one_device("joint")[0], config)["sp"]
  sp_only = _gradients(_tiny_step_on_one_device("sp")[0], config)["sp"]
  from_sg = _flat(joint) - _flat(sp_only)
  # Seen: a third of the sp-phase gradient's norm, within 2e-6 of expected.
  assert np.linalg.norm(from_sg) > 0.1 * np.linalg.norm(_flat(sp_only))
  assert _relative_error(from_sg, _flat(expected)) < 1e-4


@pytest.mark.xdist_group("tiny_joint_step")
def test_joint_true_labels_weight_adds_sg_phases_gradient_to_sg_net():
  """With loss.joint_true_labels_weight w, SG-Net's joint gradient is the
  paper's joint gradient plus w times its sg-phase gradient (the same
  state and batch, rendering the true labels); the loss of that render is
  logged, equal to the sg step's."""
  config = _tiny_config()
  config.loss.joint_true_labels_weight = 0.5
  state, metrics = _one_step(config, "joint", jax.devices()[:1])
  with_true = _flat(_gradients(state, config)["sg"])
  paper = _flat(_gradients(_tiny_step_on_one_device("joint")[0], config)["sg"])
  sg_state, sg_metrics = _tiny_step_on_one_device("sg")
  sg_phase = _flat(_gradients(sg_state, config)["sg"])
  assert np.linalg.norm(with_true - paper) > 0.1 * np.linalg.norm(paper)
  assert _relative_error(with_true - paper, 0.5 * sg_phase) < 1e-4
  np.testing.assert_allclose(metrics["sg/loss_true_labels"],
                             sg_metrics["sg/loss"], rtol=1e-6)


@pytest.mark.parametrize("phase", ["sp", "sg"])
def test_bfloat16_step_agrees_with_float32(phase):
  """Mixed precision changes rounding, not the step: the gradient of every
  parameter array of every network one step trains is within 40% relative
  error and at cosine similarity above 0.9 of float32's (seen: at most 18%,
  at least 0.98), while differing from it (bfloat16 is really used); every
  metric (all losses and scores) is within 2% (+0.01 absolute, for scores
  near 0) of float32's; parameters stay float32.

  Not the joint phase: there SG-Net renders the argmax of SP-Net's near
  uniform first predictions, which rounding flips at many pixels.
  """
  config = _tiny_config()
  state_32, metrics_32 = _tiny_step_on_one_device(phase)
  if phase == "sp":
    # Known labels from the ground truth: an untrained segmenter's argmax
    # flips under rounding, which would change SP-Net's input, not its step.
    config.known_labels = "ground_truth"
    state_32, metrics_32 = _one_step(config, phase, jax.devices()[:1])
  config.dtype = "bfloat16"
  state_16, metrics_16 = _one_step(config, phase, jax.devices()[:1])
  assert {leaf.dtype for leaf in jax.tree.leaves(state_16.params)} == {
      np.dtype(np.float32)
  }
  assert metrics_16.keys() == metrics_32.keys()
  for key in metrics_32:
    np.testing.assert_allclose(
        metrics_16[key], metrics_32[key], rtol=0.02, atol=0.01, err_msg=key
    )
  gradients_32 = _gradients(state_32, config)
  gradients_16 = _gradients(state_16, config)
  errors = []
  for name in ({"sp": ("sp", "sp_disc"), "sg": ("sg", "sg_disc")}[phase]):
    for (path, leaf_32), leaf_16 in zip(
        jax.tree_util.tree_leaves_with_path(gradients_32[name]),
        jax.tree.leaves(gradients_16[name]),
        strict=True,
    ):
      where = name + jax.tree_util.keystr(path)
      leaf_32, leaf_16 = np.ravel(leaf_32), np.ravel(leaf_16)
      errors.append(_relative_error(leaf_16, leaf_32))
      assert errors[-1] < 0.4, where
      cosine = leaf_16 @ leaf_32 / (
          np.linalg.norm(leaf_16) * np.linalg.norm(leaf_32)
      )
      assert cosine > 0.9, where
  assert max(errors) > 1e-3


_FOLD_SP_UNFOLD_SG = {
    "model.sp_generator.output_conv_form": "space_to_depth",
    "model.sg_generator.output_conv_form": "direct",
}


@pytest.mark.xdist_group("tiny_joint_step")
@pytest.mark.parametrize(
    "overrides, params_atol, metrics_rtol",
    [
        ({"model.remat": "none"}, 1e-6, 0.0),
        ({"model.remat": "full"}, 1e-6, 0.0),
        # The same convolutions summed in another order round differently.
        # Adam's first update is +-lr whatever a gradient's size, so one at
        # rounding-noise size may turn over: parameters agree within 2 lr,
        # and the metrics, which the networks' outputs decide, closely.
        (_FOLD_SP_UNFOLD_SG, 4e-4, 1e-4),
    ],
)
def test_speed_options_change_memory_and_time_not_results(
    overrides, params_atol, metrics_rtol
):
  """Rematerialisation recomputes the same values and space-to-depth output
  convolutions compute the same function from the same parameters, so one
  step from the same state ends in the same place whichever is chosen. The
  reference is the tiny config's own joint step (remat 'conv_outputs',
  SG-Net's output convolution folded, SP-Net's not)."""
  config = _tiny_config()
  assert config.model.remat == "conv_outputs"
  assert config.model.sg_generator.output_conv_form == "space_to_depth"
  assert config.model.sp_generator.output_conv_form == "direct"
  state, metrics = _tiny_step_on_one_device("joint")
  config.update_from_flattened_dict(overrides)
  state_fast, metrics_fast = _one_step(config, "joint", jax.devices()[:1])
  jax.tree.map(
      lambda a, b: np.testing.assert_allclose(a, b, atol=params_atol),
      state.params,
      state_fast.params,
  )
  for key in metrics:
    np.testing.assert_allclose(
        metrics[key],
        metrics_fast[key],
        rtol=metrics_rtol,
        atol=1e-5,
        err_msg=key,
    )


def test_each_phase_compiles_once_and_consumes_its_state():
  """Steps after the first reuse the first compilation (no retracing from
  changed dtypes, weak types or shardings), and the donated state's buffers
  are handed to the new state rather than copied."""
  config = _tiny_config()
  mesh = sharding.make_mesh()
  networks = spg.Networks.from_config(config)
  state = sharding.replicate(
      steps.create_train_state(config, networks, jax.random.key(0)), mesh
  )
  train_steps = steps.make_train_steps(config, networks, mesh)
  for phase in ("seg", "sp", "sg", "joint", "sp", "joint", "sg", "seg"):
    old_state = state
    state, _ = train_steps[phase](state, sharding.shard_batch(_batch(), mesh))
    assert all(leaf.is_deleted() for leaf in jax.tree.leaves(old_state))
  assert int(state.step) == 8
  assert {phase: step.jitted._cache_size()
          for phase, step in train_steps.items()} == {
      "seg": 1,
      "sp": 1,
      "sg": 1,
      "joint": 1,
  }


def test_a_restored_state_traces_the_same_step_as_a_fresh_one(tmp_path):
  """No leaf of a fresh state is weakly typed, as none of a restored one is,
  so a resumed run lowers the very program the first run compiled (and
  reads it back from the persistent compilation cache)."""
  config = _tiny_config()
  mesh = sharding.make_mesh()
  networks = spg.Networks.from_config(config)
  fresh = sharding.replicate(
      steps.create_train_state(config, networks, jax.random.key(0)), mesh
  )
  assert not any(leaf.weak_type for leaf in jax.tree.leaves(fresh))
  manager = checkpoints.make_manager(tmp_path, config)
  checkpoints.save(manager, 1, fresh, "sp", config)
  manager.wait_until_finished()
  restored, _ = checkpoints.restore_latest(
      checkpoints.make_manager(tmp_path, config), fresh
  )
  step = steps.make_train_steps(config, networks, mesh)["joint"]
  batch = sharding.shard_batch(_batch(), mesh)
  assert step.lower(fresh, batch).as_text() == (
      step.lower(restored, batch).as_text()
  )


def test_a_run_without_a_segmenter_keeps_the_checkpoint_layout(tmp_path):
  """Without a segmenter the state has none, and a checkpoint holds exactly
  the five entries checkpoints held before the segmenter existed, so the
  checkpoints of older runs restore as they are; a run with one adds it."""
  config = _tiny_config()
  config.schedule.seg.steps = 0
  config.known_labels = "ground_truth"
  networks = spg.Networks.from_config(config)
  assert networks.seg is None
  state = steps.create_train_state(config, networks, jax.random.key(0))
  assert state.seg is None and "seg" not in state.params
  manager = checkpoints.make_manager(tmp_path, config)
  checkpoints.save(manager, 1, state, "sp", config)
  manager.wait_until_finished()
  saved = manager.restore(
      1, args=ocp.args.Composite(state=ocp.args.StandardRestore())
  ).state
  assert set(saved) == {"step", "sp", "sg", "sp_disc", "sg_disc"}
  restored, meta = checkpoints.restore_latest(manager, state)
  assert meta["step"] == 1 and restored.seg is None
  for leaf, restored_leaf in zip(
      jax.tree.leaves(state), jax.tree.leaves(restored), strict=True
  ):
    np.testing.assert_array_equal(leaf, restored_leaf)
  # Adding the segmenter leaves the other networks' initial parameters.
  with_segmenter = spg.Networks.from_config(_tiny_config()).init(
      jax.random.key(0), _SIZE
  )
  assert set(with_segmenter) == set(state.params) | {"seg"}
  for leaf, leaf_with in zip(
      jax.tree.leaves(state.params),
      jax.tree.leaves({name: with_segmenter[name] for name in state.params}),
      strict=True,
  ):
    np.testing.assert_array_equal(leaf, leaf_with)
