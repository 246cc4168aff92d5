"""What a run does when a loss or an update stops being finite.

Every train step checks, on the device, that its losses and the parameters
it updated are finite; if not, it keeps the state it was given and reports
1.0 under `steps.NONFINITE` (`steps._keep_if_nonfinite`). The loop reads
those flags only when it reads the metrics anyway: at each logging
interval, and before each checkpoint. Then `config.on_nonfinite` decides:

- 'stop' (default): the run stops with `DivergenceError`, naming the first
  bad step, its phase and the terms that were not finite. No update of a
  bad step was applied and nothing is saved after it, so the latest
  checkpoint is good.
- 'skip': the run goes on; the logs count the skipped steps
  (`train/skipped_steps` per logging window).
"""

from collections.abc import Sequence
import dataclasses
import math

from spg_jax.training import steps

ON_NONFINITE = ("stop", "skip")


class DivergenceError(RuntimeError):
  """A train step's losses or updated parameters were not finite."""


@dataclasses.dataclass(frozen=True)
class StepRecord:
  """One step's metrics as the host read them.

  Attributes:
    step: the step number the update made (1 for the first step).
    phase: its training phase.
    metrics: its metrics, floats.
  """

  step: int
  phase: str
  metrics: dict[str, float]


def check_config(on_nonfinite: str) -> None:
  """Refuses an unknown `config.on_nonfinite`."""
  if on_nonfinite not in ON_NONFINITE:
    raise ValueError(
        f"config.on_nonfinite={on_nonfinite!r} must be one of {ON_NONFINITE}."
    )


def _bad_terms(metrics: dict[str, float]) -> list[str]:
  return sorted(name for name, value in metrics.items()
                if name != steps.NONFINITE and not math.isfinite(value))


def check(records: Sequence[StepRecord], on_nonfinite: str,
          last_checkpoint: int | None) -> int:
  """The number of skipped (non-finite) steps among `records`.

  Raises:
    DivergenceError: `on_nonfinite` is 'stop' and a step was not finite;
      the message names the first such step, its phase and terms, and the
      latest checkpoint (`last_checkpoint`, None if none yet).
  """
  bad = [record for record in records if record.metrics[steps.NONFINITE]]
  if bad and on_nonfinite == "stop":
    first = bad[0]
    terms = _bad_terms(first.metrics) or [
        "a parameter after the update (its gradient was not finite)"]
    saved = (f"the latest checkpoint, step {last_checkpoint}, was saved"
             " before it" if last_checkpoint is not None
             else "no checkpoint was saved")
    raise DivergenceError(
        f"Training diverged at step {first.step} (phase {first.phase}):"
        f" {', '.join(terms)} not finite. That step's update was not"
        f" applied, {len(bad)} step(s) of this window were bad, and {saved}."
        " Lower the phase's learning rate (config.schedule), check the data,"
        " or set --config.on_nonfinite=skip to skip such steps and go on."
    )
  return len(bad)
