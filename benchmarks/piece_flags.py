"""The command line of the benchmarks that time pieces of a step alone."""

from absl import app
from absl import flags
import ml_collections
from ml_collections import config_flags

from spg_jax.runtime import sharding
from spg_jax.training import config_checks


def define(repeats: int, repeats_help: str) -> dict[str, flags.FlagHolder]:
  """Defines `--config` and `--repeats` (default `repeats`); returns them.

  Called only when a benchmark runs as a program, so that importing it next
  to other programs' flags never clashes.
  """
  return {
      "config": config_flags.DEFINE_config_file(
          "config", None, "Training configuration file.", lock_config=True
      ),
      "repeats": flags.DEFINE_integer(
          "repeats", repeats, repeats_help, lower_bound=1
      ),
  }


def per_device_batch_size(config: ml_collections.ConfigDict) -> int:
  """One device's share of the config's batch, as training splits it.

  Raises:
    app.UsageError: the config fails `config_checks` (a batch that does
      not split evenly over the devices, say).
  """
  mesh = sharding.make_mesh()
  try:
    config_checks.check_model_and_steps(config, mesh)
  except ValueError as error:
    raise app.UsageError(str(error)) from None
  return config.batch_size // mesh.size
