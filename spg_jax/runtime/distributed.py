"""Starting JAX's multi-controller runtime when a run spans several processes.

One process runs per host (per GPU machine, per TPU VM of a pod slice), all
with the same command. They find each other through a coordinator, process
0's address: given by `--coordinator_address`, `--num_processes` and
`--process_id`, or found by `jax.distributed.initialize` itself where it
knows the cluster (Cloud TPU pod slices, SLURM jobs of several tasks). A
single process on one host starts nothing.
"""

import os

from absl import logging
import jax

# JAX's own default: how long a process may go silent before the others
# give it up for dead and stop.
DEFAULT_HEARTBEAT_TIMEOUT_SECONDS = 100


def cluster_detected(environment: dict[str, str]) -> bool:
  """Whether `environment` is one process of a cluster that
  `jax.distributed.initialize()` sets up on its own: a SLURM job of
  several tasks, or a TPU VM of a pod slice with several workers."""
  slurm_tasks = environment.get("SLURM_NTASKS", "1")
  tpu_workers = environment.get("TPU_WORKER_HOSTNAMES", "")
  return (slurm_tasks.isdigit() and int(slurm_tasks) > 1) or "," in tpu_workers


def initialize(
    coordinator_address: str | None,
    num_processes: int | None,
    process_id: int | None,
    heartbeat_timeout_seconds: int = DEFAULT_HEARTBEAT_TIMEOUT_SECONDS,
) -> None:
  """Joins this process to the run's others, if it has any.

  Must run before anything touches a JAX device. Processes on CPUs exchange
  their collectives through Gloo (over TCP), the only cross-process
  transport XLA:CPU has. When a process dies (killed, preempted, out of
  memory), the others stop once it has missed its heartbeats for
  `heartbeat_timeout_seconds`: JAX aborts them with a message that another
  task died, and the same command, rerun on every host, resumes from the
  last checkpoint.

  Raises:
    ValueError: only some of the three settings are given.
  """
  given = {
      "--coordinator_address": coordinator_address,
      "--num_processes": num_processes,
      "--process_id": process_id,
  }
  missing = [name for name, value in given.items() if value is None]
  if missing and len(missing) < len(given):
    raise ValueError(
        f"Give {', '.join(missing)} too: a process started by hand needs the"
        " coordinator's address (host:port of process 0), the number of"
        " processes and its own id (0 to num_processes - 1)."
    )
  if missing and not cluster_detected(dict(os.environ)):
    return
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  if missing:
    jax.distributed.initialize(
        heartbeat_timeout_seconds=heartbeat_timeout_seconds
    )
  else:
    jax.distributed.initialize(
        coordinator_address=coordinator_address,
        num_processes=num_processes,
        process_id=process_id,
        heartbeat_timeout_seconds=heartbeat_timeout_seconds,
    )
  logging.info(
      "Joined %d processes as process %d.",
      jax.process_count(),
      jax.process_index(),
  )
