"""Tests of the phases and of each network's learning rate over them."""

import types

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from configs import default
from configs import synthetic
from spg_jax.training import config_checks
from spg_jax.training import schedules
from spg_jax.training import steps


def _schedule():
  """Phases of different lengths, peaks and decays, so none is mistaken for
  another: seg 3 steps at 2.0 decaying over all 3, sp 6 at 1.0 decaying
  over 4, sg 5 at 0.5 decaying over all 5, joint 4 at 0.25 decaying over
  2."""
  return ml_collections.ConfigDict(
      dict(
          seg=default.phase_schedule(3, decay_steps=3, learning_rate=2.0),
          sp=default.phase_schedule(6, decay_steps=4, learning_rate=1.0),
          sg=default.phase_schedule(5, decay_steps=5, learning_rate=0.5),
          joint=default.phase_schedule(4, decay_steps=2, learning_rate=0.25),
      )
  )


# Each network's rate by its own update count, one past its last update.
_SP_RATES = [
    1.0, 1.0,  # sp's first updates, constant
    1.0, 0.75, 0.5, 0.25,  # sp's decay starts at update 2; its last, 0.25
    0.25, 0.25,  # the first joint update is back at joint's peak
    0.25, 0.125,  # joint's decay starts at its update 2; its last, 0.125
    0.0,  # the rate reaches 0 as the joint phase ends
]
_SG_RATES = [
    0.5, 0.4, 0.3, 0.2, 0.1,  # sg decays over all its 5 updates
    0.25, 0.25, 0.25, 0.125,  # then joint's schedule from its start
    0.0,
]
_EXPECTED_RATES = {
    # The segmenter runs only its own phase, decaying over all of it.
    "seg": [2.0, 4.0 / 3.0, 2.0 / 3.0, 0.0],
    "sp": _SP_RATES,
    "sp_disc": _SP_RATES,
    "sg": _SG_RATES,
    "sg_disc": _SG_RATES,
}


def test_phases_follow_the_schedule():
  schedule = _schedule()
  schedule.seg.steps = 1
  schedule.sp.steps, schedule.sg.steps, schedule.joint.steps = 2, 3, 1
  assert [schedules.phase_at(s, schedule) for s in range(7)] == [
      "seg", "sp", "sp", "sg", "sg", "sg", "joint",
  ]
  assert schedules.total_steps(schedule) == 7
  schedule.seg.steps = schedule.sg.steps = 0
  assert [schedules.phase_at(s, schedule) for s in range(3)] == [
      "sp", "sp", "joint",
  ]


def test_a_schedule_saved_before_the_seg_phase_existed_still_reads():
  """Inference and evaluation rebuild a run's state from its config.json,
  which has no 'seg' phase if the run predates the segmenter."""
  schedule = _schedule()
  del schedule["seg"]
  assert schedules.total_steps(schedule) == 6 + 5 + 4
  assert [schedules.phase_at(s, schedule) for s in (0, 5, 6, 10, 11, 14)] == [
      "sp", "sp", "sg", "sg", "joint", "joint",
  ]
  rates = schedules.learning_rate_schedules(schedule)
  assert float(rates["seg"](0)) == 0.0
  for name in ("sp", "sg"):
    np.testing.assert_allclose(
        [float(rates[name](n)) for n in range(len(_EXPECTED_RATES[name]))],
        _EXPECTED_RATES[name], atol=1e-7,
    )


def test_each_network_runs_its_phases_schedules_in_order():
  """SP-Net and its discriminator run sp's schedule, then joint's from its
  peak; SG-Net and its discriminator sg's, then joint's; the segmenter
  seg's alone."""
  rates = schedules.learning_rate_schedules(_schedule())
  for name, expected in _EXPECTED_RATES.items():
    np.testing.assert_allclose(
        [rates[name](count) for count in range(len(expected))],
        expected,
        rtol=1e-6,
        err_msg=name,
    )


def _stand_in_networks(params):
  """Stands in for `spg.Networks` in `create_train_state`: each network's
  parameters are `params`, so no real network is initialised."""
  network = types.SimpleNamespace(apply=None)
  return types.SimpleNamespace(
      init=lambda rng, image_size: {
          name: params for name in schedules.NETWORK_PHASES
      },
      seg=network,
      sp=network,
      sg=network,
      sp_disc=network,
      sg_disc=network,
  )


def test_each_networks_adam_steps_at_its_rate():
  """The optimizers of the train state scale Adam's step by the network's
  rate at its update count: their update is that rate times the update of
  Adam at rate 1 from the same state."""
  config = synthetic.get_config("tiny")
  config.schedule = _schedule()
  params = jnp.array([1.0, -2.0, 0.5])
  grads = jnp.array([0.5, -3.0, 1e-3])
  state = steps.create_train_state(
      config, _stand_in_networks(params), jax.random.key(0)
  )
  unit_adam = optax.adam(1.0, b1=config.optimizer.b1, b2=config.optimizer.b2)
  for name, expected in _EXPECTED_RATES.items():
    network = getattr(state, name)
    counts = [count for count in (0, 3, 5, 6, 9) if count < len(expected)]
    for count in counts:
      unit_update, _ = unit_adam.update(
          grads, optax.tree_utils.tree_set(unit_adam.init(params), count=count)
      )
      update, _ = network.tx.update(
          grads, optax.tree_utils.tree_set(network.opt_state, count=count)
      )
      np.testing.assert_allclose(
          update,
          expected[count] * unit_update,
          rtol=1e-5,
          err_msg=f"{name} at update {count}",
      )


def _tiny_config():
  config = synthetic.get_config("tiny")
  config.schedule = _schedule()
  return config


def _set(config, key, value):
  """Sets a dotted key under config.schedule."""
  phase, name = key.split(".")
  config.schedule[phase][name] = value


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("sp.decay_steps", 0, "config.schedule.sp.decay_steps=0 must be"
         " between 1 and config.schedule.sp.steps=6"),
        ("sg.decay_steps", -1, "config.schedule.sg.decay_steps=-1 must be"
         " between 1 and config.schedule.sg.steps=5"),
        ("joint.decay_steps", 5, "config.schedule.joint.decay_steps=5 must be"
         " between 1 and config.schedule.joint.steps=4"),
        ("sg.steps", -1, "config.schedule.sg.steps=-1 must be >= 0"),
        ("joint.learning_rate", 0.0,
         "config.schedule.joint.learning_rate=0.0 must be > 0"),
        ("sp.learning_rate", -1e-4,
         "config.schedule.sp.learning_rate=-0.0001 must be > 0"),
        ("sg.end_learning_rate", -1e-5,
         "config.schedule.sg.end_learning_rate=-1e-05 must be between 0 and"
         " config.schedule.sg.learning_rate="),
        ("joint.end_learning_rate", 1.0,
         "config.schedule.joint.end_learning_rate=1.0 must be between 0 and"
         " config.schedule.joint.learning_rate="),
    ],
)
def test_bad_schedule_is_refused_naming_the_key(key, value, message):
  config = _tiny_config()
  _set(config, key, value)
  mesh = jax.sharding.Mesh(jax.devices()[:1], ("batch",))
  with pytest.raises(ValueError, match=message):
    config_checks.check_model_and_steps(config, mesh)


def test_schedule_without_steps_or_phases_is_refused():
  schedule = _schedule()
  for phase in schedules.PHASES:
    schedule[phase].steps = 0
  with pytest.raises(ValueError, match="config.schedule has no steps"):
    schedules.check_schedule(schedule)
  old_layout = ml_collections.ConfigDict(
      dict(sp_steps=2, sg_steps=2, joint_steps=2)
  )
  with pytest.raises(
      ValueError,
      match="config.schedule.seg lacks steps, learning_rate, decay_steps",
  ):
    schedules.check_schedule(old_layout)


def test_a_phase_can_end_at_a_rate_the_next_phase_carries_on_from():
  """sp decays from 1.0 to 0.5 and joint from 0.5 to 0: one decay over
  both phases, the shape of a single schedule across them."""
  schedule = _schedule()
  schedule.sp.end_learning_rate = 0.5
  schedule.joint.learning_rate = 0.5
  schedule.joint.decay_steps = 4
  schedules.check_schedule(schedule)
  rates = schedules.learning_rate_schedules(schedule)
  np.testing.assert_allclose(
      [rates["sp"](count) for count in range(11)],
      [1.0, 1.0, 1.0, 0.875, 0.75, 0.625,  # sp: 1.0 down towards 0.5
       0.5, 0.375, 0.25, 0.125, 0.0],  # joint: 0.5 down to 0
  )
  # A schedule without the key (a run saved before it existed) ends at 0.
  del schedule.sg["end_learning_rate"]
  np.testing.assert_allclose(
      float(schedules.learning_rate_schedules(schedule)["sg"](4)), 0.1
  )


def test_phase_of_no_steps_is_skipped_whatever_its_decay():
  """A phase of 0 steps (here sp) leaves its decay_steps unchecked, and its
  network starts on the next phase's schedule."""
  schedule = _schedule()
  schedule.sp.steps = 0
  schedules.check_schedule(schedule)
  rates = schedules.learning_rate_schedules(schedule)
  np.testing.assert_allclose(
      [rates["sp"](count) for count in range(5)],
      [0.25, 0.25, 0.25, 0.125, 0.0],
  )
