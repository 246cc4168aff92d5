"""Trains and evaluates SPG-Net; the logic lives in `spg_jax.training.loop`.

  python -m spg_jax.main --config=configs/synthetic.py --workdir=/tmp/spg

Any config value can be overridden, e.g. `--config.batch_size=32`; a config
file's variant follows a colon: `--config=configs/synthetic.py:tiny`.

A run over several hosts starts the same command on each, with
`--coordinator_address=HOST:PORT` (process 0's), `--num_processes=N` and
`--process_id=I`; on Cloud TPU pod slices and in SLURM jobs JAX finds these
itself (`spg_jax.runtime.distributed`).
"""

import logging as logging_lib
import sys

from absl import app
from absl import flags
from absl import logging
import jax
from ml_collections import config_flags
import tensorflow as tf

from spg_jax.data import preparation
from spg_jax.pretrained import conversion
from spg_jax.pretrained import published
from spg_jax.runtime import distributed
from spg_jax.runtime import host_cpu
from spg_jax.runtime import preemption
from spg_jax.runtime import workdir_lock
from spg_jax.training import checkpoints
from spg_jax.training import divergence
from spg_jax.training import loop
from spg_jax.training import resume_check

# Libraries that log every file they touch at INFO; their warnings still show.
_CHATTY_LIBRARIES = ("/orbax/", "/tensorflow_datasets/")


class _QuietLibraries(logging_lib.Filter):
  """Drops INFO records from `_CHATTY_LIBRARIES`, keeping spg_jax and clu's."""

  def filter(self, record: logging_lib.LogRecord) -> bool:
    chatty = any(part in record.pathname for part in _CHATTY_LIBRARIES)
    return record.levelno > logging_lib.INFO or not chatty


_WORKDIR = flags.DEFINE_string(
    "workdir", None, "Where checkpoints, logs, samples and metrics go."
)
_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Training configuration file.", lock_config=True
)
_COORDINATOR_ADDRESS = flags.DEFINE_string(
    "coordinator_address", None,
    "Several processes: HOST:PORT of process 0, where they meet.",
)
_NUM_PROCESSES = flags.DEFINE_integer(
    "num_processes", None, "Several processes: how many.", lower_bound=1
)
_PROCESS_ID = flags.DEFINE_integer(
    "process_id", None, "Several processes: this one's, from 0.", lower_bound=0
)
_HEARTBEAT_TIMEOUT = flags.DEFINE_integer(
    "heartbeat_timeout_seconds",
    distributed.DEFAULT_HEARTBEAT_TIMEOUT_SECONDS,
    "Several processes: how long one may go silent before the others stop"
    " (one killed stops the rest this long after).",
    lower_bound=1,
)
flags.mark_flags_as_required(["config", "workdir"])


def main(argv: list[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  try:
    host_cpu.configure(_CONFIG.value.cpu)
    distributed.initialize(
        _COORDINATOR_ADDRESS.value,
        _NUM_PROCESSES.value,
        _PROCESS_ID.value,
        _HEARTBEAT_TIMEOUT.value,
    )
  except ValueError as error:
    raise app.UsageError(str(error)) from None
  # The input pipeline runs on the host; keep TensorFlow off any accelerator.
  tf.config.set_visible_devices([], "GPU")
  logging.set_verbosity(logging.INFO)
  logging.get_absl_handler().addFilter(_QuietLibraries())
  logging.info(
      "JAX process %d/%d, local devices: %s",
      jax.process_index(),
      jax.process_count(),
      jax.local_devices(),
  )
  try:
    loop.train_and_evaluate(_CONFIG.value, _WORKDIR.value)
  # These messages say what is wrong and how to fix it; a traceback would
  # only bury them.
  except preparation.DataError as error:
    sys.exit(f"Data error: {error}")
  except resume_check.ConfigChangeError as error:
    sys.exit(f"Resume refused: {error}")
  except (published.WeightsUnavailableError, conversion.WeightsError) as error:
    sys.exit(f"Pretrained weights: {error}")
  except divergence.DivergenceError as error:
    sys.exit(str(error))
  except (workdir_lock.WorkdirInUseError,
          workdir_lock.WorkdirNotWritableError,
          checkpoints.NotEnoughSpaceError) as error:
    sys.exit(str(error))
  except checkpoints.SaveError as error:
    sys.exit(f"Checkpoint not saved: {error}")
  except preemption.Preempted as stopped:
    logging.info("%s", stopped)  # exits 0: the run ended as asked


def run() -> None:
  """The entry point of `spg-train`, the same as `python -m spg_jax.main`."""
  app.run(main)


if __name__ == "__main__":
  run()
