"""The phases of training and each network's learning rate over them.

Training runs four phases in order, each a ConfigDict under
`config.schedule`: 'seg' trains the segmenter that labels the known region
(first, so that SP-Net can learn from its labels; a phase of 0 steps means
the run has no segmenter), 'sp' trains SP-Net and its discriminator, 'sg'
SG-Net and its discriminator, 'joint' SP-Net, SG-Net and their
discriminators. Each phase has its own `steps`, its own peak
`learning_rate` and its own `decay_steps`: the rate is constant, then falls
linearly to the phase's `end_learning_rate` over its last `decay_steps`
steps (to 0 by default: pix2pixHD's schedule, which the paper trains each
network with). A network's Adam
follows the schedules of the phases that update it, one after the other,
driven by the network's own update count: SP-Net and its discriminator run
sp's schedule, then joint's from its start; SG-Net and its discriminator
run sg's, then joint's. So a network enters the joint phase at the joint
peak rate, whatever its rate at the end of its own phase.
"""

import ml_collections
import optax

PHASES = ("seg", "sp", "sg", "joint")

# The phases that update each network, in the order they run.
NETWORK_PHASES = {
    "seg": ("seg",),
    "sp": ("sp", "joint"),
    "sp_disc": ("sp", "joint"),
    "sg": ("sg", "joint"),
    "sg_disc": ("sg", "joint"),
}

_PHASE_KEYS = ("steps", "learning_rate", "decay_steps")


def _phases_in(
    schedule: ml_collections.ConfigDict, phases: tuple[str, ...] = PHASES
) -> tuple[str, ...]:
  """Those of `phases` that `schedule` has: a run saved before the
  segmenter existed has no 'seg' phase, which counts as 0 steps."""
  return tuple(phase for phase in phases if phase in schedule)


def total_steps(schedule: ml_collections.ConfigDict) -> int:
  """Train steps over all phases."""
  return sum(schedule[phase].steps for phase in _phases_in(schedule))


def phase_at(step: int, schedule: ml_collections.ConfigDict) -> str:
  """The phase that train step `step` (0-based) belongs to."""
  end = 0
  for phase in _phases_in(schedule)[:-1]:
    end += schedule[phase].steps
    if step < end:
      return phase
  return PHASES[-1]


def end_learning_rate(phase: ml_collections.ConfigDict) -> float:
  """The rate a phase decays to; 0 for a run saved before the key existed."""
  return phase.get("end_learning_rate", 0.0)


def phase_schedule(phase: ml_collections.ConfigDict) -> optax.Schedule:
  """A phase's rate by its step: constant, then linearly down to its end rate.

  The rate is `phase.learning_rate` up to step `steps - decay_steps`, then
  falls by `(learning_rate - end_learning_rate) / decay_steps` a step, and
  reaches `end_learning_rate` as the phase ends.
  """
  return optax.linear_schedule(
      init_value=phase.learning_rate,
      end_value=end_learning_rate(phase),
      transition_steps=phase.decay_steps,
      transition_begin=phase.steps - phase.decay_steps,
  )


def network_schedule(
    schedule: ml_collections.ConfigDict, phases: tuple[str, ...]
) -> optax.Schedule:
  """The rate by update count of a network that `phases` update, in order.

  Each phase's schedule starts from its own step 0 when the network's
  previous phases have used up their steps. A phase of 0 steps takes no
  part, and a network none of whose phases the schedule has (the segmenter
  of a run saved before it existed) gets a rate of 0.
  """
  phases = _phases_in(schedule, phases)
  if not phases:
    return optax.constant_schedule(0.0)
  boundaries = []
  end = 0
  for phase in phases[:-1]:
    end += schedule[phase].steps
    boundaries.append(end)
  return optax.join_schedules(
      [phase_schedule(schedule[phase]) for phase in phases], boundaries
  )


def learning_rate_schedules(
    schedule: ml_collections.ConfigDict,
) -> dict[str, optax.Schedule]:
  """Each network's learning rate by its own update count."""
  return {
      name: network_schedule(schedule, phases)
      for name, phases in NETWORK_PHASES.items()
  }


def check_schedule(schedule: ml_collections.ConfigDict) -> None:
  """Refuses a schedule that would not train, or not as its keys say.

  Raises:
    ValueError: naming the config key at fault and how to fix it.
  """
  for phase in PHASES:
    missing = [
        key for key in _PHASE_KEYS if key not in schedule.get(phase, {})
    ]
    if missing:
      raise ValueError(
          f"config.schedule.{phase} lacks {', '.join(missing)}: each phase of"
          f" {PHASES} needs {', '.join(_PHASE_KEYS)} (see configs/default.py)."
      )
    name = f"config.schedule.{phase}"
    steps = schedule[phase].steps
    learning_rate = schedule[phase].learning_rate
    decay_steps = schedule[phase].decay_steps
    if steps < 0:
      raise ValueError(f"{name}.steps={steps} must be >= 0.")
    if learning_rate <= 0:
      raise ValueError(f"{name}.learning_rate={learning_rate} must be > 0.")
    end = end_learning_rate(schedule[phase])
    if not 0 <= end <= learning_rate:
      raise ValueError(
          f"{name}.end_learning_rate={end} must be between 0 and"
          f" {name}.learning_rate={learning_rate}: the rate decays from one"
          " to the other."
      )
    if steps and not 1 <= decay_steps <= steps:
      raise ValueError(
          f"{name}.decay_steps={decay_steps} must be between 1 and"
          f" {name}.steps={steps}: the rate decays to end_learning_rate over"
          " the phase's last decay_steps steps."
      )
  if total_steps(schedule) <= 0:
    raise ValueError(
        "config.schedule has no steps: set config.schedule.sp.steps,"
        " sg.steps or joint.steps > 0."
    )
