"""JAX's persistent compilation cache, kept in the workdir unless set.

Compiling SPG-Net's train steps takes 6 to 9 s each on a 2-core CPU for the
synthetic config and 35 to 60 s on an H100 for the paper-size one
(BENCHMARKS.md). A run that resumes, a preempted TPU VM's say, would compile
the same programs again; with the cache it reads them back. The cache is
keyed by the program, the compile options and XLA's flags, so a changed
config or XLA flag compiles afresh; the compile options name the cache's
own directory (JAX 0.10), so a cache copied or moved elsewhere is not read
back either. JAX keeps only programs that took at least
`jax_persistent_cache_min_compile_time_secs` (1 s) to compile.

JAX treats the cache as trusted code: keep it where only you can write. It
writes each entry in place, so a process killed mid-write can leave a
truncated one: JAX then logs "Error reading persistent compilation cache
entry" and compiles that program anew on every run, with the same results;
deleting the cache directory ends it.
"""

import os

from absl import logging
from etils import epath
import jax


def resolve(setting: str, workdir: epath.PathLike) -> str | None:
  """Where `config.compilation_cache_dir = setting` puts the cache.

  Args:
    setting: '' for none; an absolute path, '~/...' or a URL (gs://...,
      file://...) as it is; any other path relative to `workdir`.
    workdir: the run's directory.
  """
  if not setting:
    return None
  if "://" in setting:
    return setting
  expanded = os.path.expanduser(setting)
  if os.path.isabs(expanded):
    return expanded
  return str(epath.Path(workdir) / expanded)


def use(setting: str, workdir: epath.PathLike) -> None:
  """Points JAX's persistent compilation cache per `resolve`.

  A directory JAX already has, from JAX_COMPILATION_CACHE_DIR or an earlier
  call in this process (a notebook that trains twice, say), stays: JAX
  opens its cache once per process. Moving it is then logged instead, and
  `setting` '' leaves JAX's own choice as it is.
  """
  path = resolve(setting, workdir)
  if path is None:
    return
  current = jax.config.jax_compilation_cache_dir
  if current and current != path:
    logging.warning(
        "JAX's compilation cache stays at %s, set before this run; not"
        " moving it to %s.",
        current,
        path,
    )
    return
  jax.config.update("jax_compilation_cache_dir", path)
