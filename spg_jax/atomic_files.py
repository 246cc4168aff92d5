"""Writing files so that a reader never sees half of one.

Each write goes to a temporary sibling first and is renamed over the target,
so an interrupted run leaves the previous file (or none), never a truncated
one. Paths go through `etils.epath`, so a workdir may be on GCS.
"""

import os

from etils import epath


def write_bytes(path: epath.PathLike, data: bytes) -> None:
  """Writes `data` to `path` atomically, creating parent folders."""
  path = epath.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  partial = path.parent / f".{path.name}.partial-{os.getpid()}"
  partial.write_bytes(data)
  partial.replace(path)


def write_text(path: epath.PathLike, text: str) -> None:
  """Writes `text` (UTF-8) to `path` atomically."""
  write_bytes(path, text.encode("utf-8"))
