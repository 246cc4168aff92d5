r"""Where a traced step's time goes: each timeline's busiest operations.

  python -m spg_jax.benchmarking.benchmark --config=configs/default.py --mode=train \
      --profile_dir=/tmp/trace --profile_steps=3
  python -m benchmarks.trace_summary /tmp/trace --steps=3

Reads the newest `*.trace.json.gz` under the directory, as
`jax.profiler.trace(..., create_perfetto_trace=True)` writes it, and prints
one Markdown table per timeline (a thread of a process: a GPU's streams and
its 'XLA Ops' line, XLA:CPU's client and Eigen threads, the Python thread):
its busy time per step, and the operations with the most self time (their
own, less that of the operations nested in them) per step; with
`--by_kind`, operations are grouped by name without XLA's numeric suffix
(all `convolution.N` together, or a GPU's `loop_add_fusion_N` kernels). It needs neither
JAX nor TensorBoard, so a trace taken on a lent accelerator can be read
back on any machine; a measuring instrument, not part of the package.
"""

import argparse
from collections.abc import Iterable, Sequence
import dataclasses
import gzip
import json
import pathlib
import re
import sys


@dataclasses.dataclass(frozen=True)
class Timeline:
  """One thread's operations, in milliseconds per step."""

  process: str
  thread: str
  busy_ms: float
  self_ms_by_operation: dict[str, float]


def find_trace(directory: pathlib.Path) -> pathlib.Path:
  """The newest trace file under `directory`.

  Raises:
    FileNotFoundError: there is none.
  """
  traces = sorted(
      directory.rglob("*.trace.json.gz"), key=lambda path: path.stat().st_mtime
  )
  if not traces:
    raise FileNotFoundError(
        f"No *.trace.json.gz under {directory}: trace with"
        " `python -m spg_jax.benchmarking.benchmark --profile_dir=DIR` first."
    )
  return traces[-1]


def load_events(path: pathlib.Path) -> list[dict]:
  """The trace's events, from either of Chrome's two trace layouts."""
  with gzip.open(path, "rt") as file:
    trace = json.load(file)
  return trace["traceEvents"] if isinstance(trace, dict) else trace


def operation_kind(name: str) -> str:
  """`name` without XLA's numeric suffix: 'add_fusion.12' (an HLO name) or
  'loop_add_fusion_12' (the kernel of a GPU fusion) -> its stem."""
  return re.sub(r"(?<=[A-Za-z])[._]\d+$", "", name)


def summarise(
    events: Iterable[dict], steps: int, by_kind: bool = False
) -> list[Timeline]:
  """Each timeline's busy and per-operation self time, per step.

  Busy time is the union of the timeline's operations (nested ones count
  once); an operation's self time excludes the operations nested in it.

  Args:
    events: the trace's events (`load_events`).
    steps: how many steps the trace holds; every time is divided by it.
    by_kind: sum operations by `operation_kind` rather than by name.

  Returns:
    The timelines, busiest first.
  """
  names = {}
  spans = {}
  for event in events:
    if event.get("ph") == "M" and event.get("name") == "process_name":
      names[event["pid"]] = event["args"]["name"]
    elif event.get("ph") == "M" and event.get("name") == "thread_name":
      names[event["pid"], event["tid"]] = event["args"]["name"]
    elif event.get("ph") == "X":
      name = operation_kind(event["name"]) if by_kind else event["name"]
      spans.setdefault((event["pid"], event["tid"]), []).append(
          (event["ts"], event.get("dur", 0.0), name)
      )
  timelines = []
  for (pid, tid), thread_spans in spans.items():
    busy, self_times = _busy_and_self_times(thread_spans)
    timelines.append(
        Timeline(
            process=names.get(pid, str(pid)),
            thread=names.get((pid, tid), str(tid)),
            busy_ms=busy / 1e3 / steps,
            self_ms_by_operation={
                name: time / 1e3 / steps for name, time in self_times.items()
            },
        )
    )
  return sorted(timelines, key=lambda timeline: -timeline.busy_ms)


def _busy_and_self_times(
    spans: list[tuple[float, float, str]],
) -> tuple[float, dict[str, float]]:
  """Microseconds: the spans' union, and each name's self time.

  A span that starts inside another is its child; one that outlasts its
  parent (threads' spans seldom do) takes from the parent only the part the
  two share.
  """
  # Outer spans first where two start together, so children follow parents.
  spans = sorted(spans, key=lambda span: (span[0], -span[1]))
  busy = 0.0
  covered_until = float("-inf")
  self_times: dict[str, float] = {}
  open_spans: list[tuple[float, str]] = []  # (end, name), innermost last
  for start, duration, name in spans:
    end = start + duration
    busy += max(0.0, end - max(start, covered_until))
    covered_until = max(covered_until, end)
    while open_spans and open_spans[-1][0] <= start:
      open_spans.pop()
    if open_spans:
      parent_end, parent = open_spans[-1]
      self_times[parent] -= min(end, parent_end) - start
    self_times[name] = self_times.get(name, 0.0) + duration
    open_spans.append((end, name))
  return busy, self_times


def to_markdown(timelines: Sequence[Timeline], top: int) -> str:
  """Each timeline's busy time and its `top` operations by self time."""
  lines = []
  for timeline in timelines:
    lines += [
        f"### {timeline.process} / {timeline.thread}:"
        f" {timeline.busy_ms:.2f} ms busy per step",
        "",
        "| operation | self ms per step | share of busy |",
        "| --- | --- | --- |",
    ]
    ranked = sorted(
        timeline.self_ms_by_operation.items(), key=lambda item: -item[1]
    )
    for name, ms in ranked[:top]:
      share = ms / timeline.busy_ms if timeline.busy_ms else 0.0
      lines.append(f"| `{name}` | {ms:.3f} | {share:.1%} |")
    lines.append("")
  return "\n".join(lines)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("directory", type=pathlib.Path)
  parser.add_argument(
      "--steps", type=int, default=3, help="steps the trace holds"
  )
  parser.add_argument(
      "--top", type=int, default=25, help="operations shown per timeline"
  )
  parser.add_argument(
      "--timelines", type=int, default=6, help="busiest timelines shown"
  )
  parser.add_argument(
      "--by_kind",
      action="store_true",
      help="sum operations by name without XLA's numeric suffix",
  )
  arguments = parser.parse_args()
  if min(arguments.steps, arguments.top, arguments.timelines) < 1:
    parser.error("--steps, --top and --timelines must be at least 1.")
  try:
    path = find_trace(arguments.directory)
  except FileNotFoundError as error:
    sys.exit(str(error))
  print(f"{path}, {arguments.steps} step(s)\n")
  timelines = summarise(
      load_events(path), arguments.steps, arguments.by_kind
  )
  print(to_markdown(timelines[: arguments.timelines], arguments.top))


if __name__ == "__main__":
  main()
