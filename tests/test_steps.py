"""Tests of the training state and the data-parallel steps."""

import jax
import numpy as np
import pytest

from configs import synthetic
from spg_jax.models import spg
from spg_jax.runtime import sharding
from spg_jax.training import checkpoints
from spg_jax.training import steps

_SIZE = 16
_GLOBAL_BATCH = 4


def _tiny_config():
  config = synthetic.get_config("tiny")
  config.data.image_size = _SIZE
  config.batch_size = _GLOBAL_BATCH
  return config


def _batch():
  rng = np.random.default_rng(0)
  mask = np.zeros([_GLOBAL_BATCH, _SIZE, _SIZE, 1], np.float32)
  mask[:, 3:9, 5:12] = 1.0
  return {
      "image": rng.uniform(-1, 1, [_GLOBAL_BATCH, _SIZE, _SIZE, 3]).astype(
          np.float32
      ),
      "label": rng.integers(0, 8, [_GLOBAL_BATCH, _SIZE, _SIZE]).astype(
          np.int32
      ),
      "mask": mask,
  }


def _one_step(config, phase, devices):
  mesh = sharding.make_mesh(devices)
  networks = spg.Networks.from_config(config)
  state = sharding.replicate(
      steps.create_train_state(config, networks, jax.random.key(0)), mesh
  )
  step = steps.make_train_steps(config, networks, mesh)[phase]
  state, metrics = step(state, sharding.shard_batch(_batch(), mesh))
  return jax.device_get(state.params), jax.device_get(metrics)


@pytest.mark.parametrize("phase", steps.PHASES)
def test_step_on_four_devices_equals_step_on_one(phase):
  assert jax.device_count() == 4, "conftest.py should give 4 CPU devices"
  config = _tiny_config()
  params_1, metrics_1 = _one_step(config, phase, jax.devices()[:1])
  params_4, metrics_4 = _one_step(config, phase, jax.devices())
  initial = jax.device_get(
      spg.Networks.from_config(config).init(jax.random.key(0), _SIZE)
  )
  changed = {
      "sp": {"sp", "sp_disc"},
      "sg": {"sg", "sg_disc"},
      "joint": {"sp", "sp_disc", "sg", "sg_disc"},
  }[phase]
  for name in params_1:
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-5),
        params_1[name],
        params_4[name],
    )
    moved = not all(
        np.array_equal(a, b)
        for a, b in zip(
            jax.tree.leaves(initial[name]), jax.tree.leaves(params_1[name])
        )
    )
    assert moved == (name in changed), name
  for key in metrics_1:
    np.testing.assert_allclose(metrics_1[key], metrics_4[key], rtol=1e-5, atol=1e-6)


def test_bfloat16_step_agrees_with_float32():
  """Mixed precision changes rounding, not the step: every metric of one joint
  step (all four networks, every loss) in bfloat16 is within 2% (+0.01
  absolute, for scores near 0) of float32's (the largest gap seen in any
  phase is 1%), and parameters stay float32."""
  config = _tiny_config()
  devices = jax.devices()[:1]
  _, metrics_32 = _one_step(config, "joint", devices)
  config.dtype = "bfloat16"
  params_16, metrics_16 = _one_step(config, "joint", devices)
  assert {leaf.dtype for leaf in jax.tree.leaves(params_16)} == {
      np.dtype(np.float32)
  }
  assert metrics_16.keys() == metrics_32.keys()
  for key in metrics_32:
    np.testing.assert_allclose(
        metrics_16[key], metrics_32[key], rtol=0.02, atol=0.01, err_msg=key
    )


_FOLD_BOTH = {
    "model.sp_generator.output_conv_form": "space_to_depth",
    "model.sg_generator.output_conv_form": "space_to_depth",
}


@pytest.mark.parametrize(
    "overrides, params_atol, metrics_rtol",
    [
        ({"model.remat": "conv_outputs"}, 1e-6, 0.0),
        ({"model.remat": "full"}, 1e-6, 0.0),
        # The same convolutions summed in another order round differently.
        # Adam's first update is +-lr whatever a gradient's size, so one at
        # rounding-noise size may turn over: parameters agree within 2 lr,
        # and the metrics, which the networks' outputs decide, closely.
        (_FOLD_BOTH, 4e-4, 1e-4),
    ],
)
def test_speed_options_change_memory_and_time_not_results(
    overrides, params_atol, metrics_rtol
):
  """Rematerialisation recomputes the same values and space-to-depth output
  convolutions compute the same function from the same parameters, so one
  step from the same state ends in the same place as the plain step's."""
  config = _tiny_config()
  config.update_from_flattened_dict({
      "model.remat": "none",
      "model.sp_generator.output_conv_form": "direct",
      "model.sg_generator.output_conv_form": "direct",
  })
  devices = jax.devices()[:1]
  params, metrics = _one_step(config, "joint", devices)
  config.update_from_flattened_dict(overrides)
  params_fast, metrics_fast = _one_step(config, "joint", devices)
  jax.tree.map(
      lambda a, b: np.testing.assert_allclose(a, b, atol=params_atol),
      params,
      params_fast,
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
  for phase in ("sp", "sg", "joint", "sp", "joint", "sg"):
    old_state = state
    state, _ = train_steps[phase](state, sharding.shard_batch(_batch(), mesh))
    assert all(leaf.is_deleted() for leaf in jax.tree.leaves(old_state))
  assert int(state.step) == 6
  assert {phase: step._cache_size() for phase, step in train_steps.items()} == {
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
  checkpoints.save(manager, 1, fresh, "sp")
  manager.wait_until_finished()
  restored, _ = checkpoints.restore_latest(
      checkpoints.make_manager(tmp_path, config), fresh
  )
  step = steps.make_train_steps(config, networks, mesh)["joint"]
  batch = sharding.shard_batch(_batch(), mesh)
  assert step.lower(fresh, batch).as_text() == (
      step.lower(restored, batch).as_text()
  )


def test_phases_follow_the_schedule():
  schedule = _tiny_config().schedule
  schedule.sp_steps, schedule.sg_steps, schedule.joint_steps = 2, 3, 1
  assert [steps.phase_at(s, schedule) for s in range(6)] == [
      "sp", "sp", "sg", "sg", "sg", "joint",
  ]


def test_learning_rate_is_constant_then_decays_linearly_to_zero():
  config = _tiny_config()
  config.optimizer.learning_rate = 1.0
  config.optimizer.decay_fraction = 0.5
  schedule = steps.learning_rate_schedule(config.optimizer, 8)
  np.testing.assert_allclose(
      [schedule(s) for s in range(9)],
      [1, 1, 1, 1, 1, 0.75, 0.5, 0.25, 0.0],
  )
