"""JAX's persistent compilation cache, kept in the workdir unless set.

Compiling SPG-Net's train steps takes 6 to 9 s each on a 2-core CPU for the
synthetic config and 35 to 60 s on an H100 for the paper-size one
(BENCHMARKS.md). A run that resumes, a preempted TPU VM's say, would compile
the same programs again; with the cache it reads them back. The cache is
keyed by the program, the compile options and XLA's flags, so a changed
config or XLA flag compiles afresh. JAX treats the cache as trusted code:
keep it where only you can write.
"""

from absl import logging
from etils import epath
import jax


def resolve(setting: str, workdir: epath.PathLike) -> epath.Path | None:
  """Where `config.compilation_cache_dir = setting` puts the cache.

  Args:
    setting: '' for no cache; an absolute path or URL (gs://...) as it is;
      any other path relative to `workdir`.
    workdir: the run's directory.
  """
  if not setting:
    return None
  if setting.startswith("/") or "://" in setting:
    return epath.Path(setting)
  return epath.Path(workdir) / setting


def use(setting: str, workdir: epath.PathLike) -> None:
  """Points JAX's persistent compilation cache per `resolve`.

  JAX opens the cache once per process, at the first compilation after the
  directory is set, so a process that set another directory keeps it (a
  notebook that trains twice, say); that is logged rather than changed.
  """
  path = resolve(setting, workdir)
  if path is None:
    return
  current = jax.config.jax_compilation_cache_dir
  if current and current != str(path):
    logging.info(
        "JAX's compilation cache stays at %s, set earlier in this process;"
        " not moving it to %s.",
        current,
        path,
    )
    return
  jax.config.update("jax_compilation_cache_dir", str(path))
