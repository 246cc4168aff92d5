"""One run per workdir: a lock file that a killed run does not leave stuck.

Two runs writing one workdir would overwrite each other's checkpoints and
logs. `hold` writes `<workdir>/run.lock` (host, process id, start time)
for the length of a run and refuses a second run while the lock's process
lives. A lock whose process has ended on this host (a run killed with
SIGKILL leaves its lock behind) is taken over; one held on another host
cannot be checked from here, so the message says how to clear it. Creating
the lock is also the run's first write, so an unwritable workdir is
reported before anything else happens.

Locally the lock is created atomically (`O_EXCL`); on a remote filesystem
(`gs://`) a check, then a write, which two runs started in the same instant
could both pass.
"""

from collections.abc import Iterator
import contextlib
import datetime
import json
import os
import socket

from absl import logging
from etils import epath

LOCK_NAME = "run.lock"


class WorkdirInUseError(RuntimeError):
  """Another live run holds the workdir's lock."""


class WorkdirNotWritableError(RuntimeError):
  """The workdir cannot be created or written."""


def _is_local(path: epath.Path) -> bool:
  return "://" not in str(path)


def _process_alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:  # alive, another user's
    return True
  return True


def _write_new(path: epath.Path, text: str) -> bool:
  """Writes `text` to `path` if no file is there; whether it did."""
  if not _is_local(path):
    if path.exists():
      return False
    path.write_text(text)
    return True
  try:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
  except FileExistsError:
    return False
  with os.fdopen(descriptor, "w") as file:
    file.write(text)
  return True


def _holder(path: epath.Path) -> dict:
  try:
    return json.loads(path.read_text())
  except (OSError, ValueError):
    return {}  # being written, or damaged: judged by what it lacks


def _is_stale(holder: dict) -> bool:
  """Whether the lock's run has ended: its process is gone from this host."""
  return (holder.get("host") == socket.gethostname()
          and isinstance(holder.get("pid"), int)
          and not _process_alive(holder["pid"]))


@contextlib.contextmanager
def hold(workdir: epath.PathLike) -> Iterator[epath.Path]:
  """Holds `workdir`'s lock for the body; yields the lock file's path.

  Raises:
    WorkdirNotWritableError: the workdir cannot be created or written.
    WorkdirInUseError: a run that is alive, or on another host, holds it.
  """
  workdir = epath.Path(workdir)
  path = workdir / LOCK_NAME
  mine = json.dumps({
      "host": socket.gethostname(),
      "pid": os.getpid(),
      "started": datetime.datetime.now(datetime.timezone.utc).isoformat(
          timespec="seconds"),
  })
  try:
    workdir.mkdir(parents=True, exist_ok=True)
    taken = _write_new(path, mine)
    if not taken and _is_stale(_holder(path)):
      logging.warning("Taking over %s: its run (%s) has ended.", path,
                      _holder(path))
      path.unlink()
      taken = _write_new(path, mine)
  except OSError as error:
    raise WorkdirNotWritableError(
        f"Cannot write to the workdir {workdir}: {error}. Choose a --workdir"
        " this user can create and write."
    ) from None
  if not taken:
    holder = _holder(path)
    raise WorkdirInUseError(
        f"The workdir {workdir} is in use by process {holder.get('pid', '?')}"
        f" on {holder.get('host', '?')} since {holder.get('started', '?')}"
        f" (its lock: {path}). Two runs in one workdir would overwrite each"
        " other's checkpoints. Wait for it, use another --workdir, or, if"
        f" that run has ended on another machine, delete {path}."
    )
  try:
    yield path
  finally:
    if _holder(path).get("pid") == os.getpid():
      path.unlink()
