"""Starting a command whose flags are defined only when it runs.

Each command of spg_jax (inpaint, demo, inspect, benchmark, the fake
Cityscapes writer) defines its flags in a function rather than at import, so
that importing its module beside another program's flags never clashes.
"""

from collections.abc import Callable, Sequence
from typing import Any

from absl import app
from absl import flags

FlagHolders = dict[str, flags.FlagHolder]


def run(
    define_flags: Callable[[], FlagHolders],
    main: Callable[[Sequence[str], FlagHolders], Any],
) -> None:
  """Defines the command's flags, then runs `main(argv, holders)` under absl."""
  holders = define_flags()
  app.run(lambda argv: main(argv, holders))
