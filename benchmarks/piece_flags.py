"""The command line of the benchmarks that time pieces of a step alone."""

from absl import flags
from ml_collections import config_flags


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
