r"""Loads a running demo with concurrent sessions and reports their latency.

  python -m spg_jax.inference.demo --workdir=WORKDIR --port=7860 &
  python -m benchmarks.demo_load --url=http://127.0.0.1:7860 --sessions=8 \
      --rounds=3

Each session is one user of `spg_jax.inference.demo` through
`gradio_client`: the example's image, hole mask and known labels, "Predict
labels", then "Render" from the predicted labels. A round starts
`--sessions` of them at once; the demo queues them (one per button at a
time), so a session's latency is its wait plus its work. Prints the median
and slowest latency of each call and of whole sessions, the rounds' wall
time and the server's resident memory after each round (with `--pid`); a
measuring instrument for BENCHMARKS.md, not part of the package.
"""

import argparse
from collections.abc import Sequence
import concurrent.futures
import dataclasses
import pathlib
import statistics
import time

import gradio_client

_SAMPLES = pathlib.Path(__file__).resolve().parents[1] / "data" / "samples"


@dataclasses.dataclass(frozen=True)
class Session:
  """What one session downloaded, and how long each call took."""

  before: str
  result: str
  predict_seconds: float
  render_seconds: float


def _editor_value(path: str) -> dict:
  return {"background": gradio_client.handle_file(path), "layers": [],
          "composite": None, "id": None}


def example_session(url: str) -> Session:
  """One user asking the demo at `url` to complete the example."""
  client = gradio_client.Client(url, verbose=False)
  start = time.perf_counter()
  labels, status = client.predict(
      _editor_value(str(_SAMPLES / "street.png")),
      gradio_client.handle_file(str(_SAMPLES / "street_mask.png")),
      gradio_client.handle_file(str(_SAMPLES / "street_labels.png")),
      api_name="/predict",
  )
  predicted = time.perf_counter()
  if not status.startswith("Predicted"):
    raise RuntimeError(f"predict answered {status!r}")
  (before, _), result, status = client.predict(
      _editor_value(labels["background"]), api_name="/render"
  )
  if not status.startswith("Rendered"):
    raise RuntimeError(f"render answered {status!r}")
  return Session(before, result, predicted - start,
                 time.perf_counter() - predicted)


def resident_mib(pid: int) -> float:
  """The resident memory of process `pid`, from /proc (Linux)."""
  status = pathlib.Path(f"/proc/{pid}/status").read_text()
  for line in status.splitlines():
    if line.startswith("VmRSS:"):
      return int(line.split()[1]) / 1024
  raise ValueError(f"/proc/{pid}/status has no VmRSS line.")


def concurrent_round(url: str, sessions: int) -> list[Session]:
  """`sessions` sessions started at once; their results in order."""
  with concurrent.futures.ThreadPoolExecutor(sessions) as pool:
    return list(pool.map(lambda _: example_session(url), range(sessions)))


def _summary(name: str, seconds: Sequence[float]) -> str:
  return (f"{name}: median {statistics.median(seconds):.2f} s,"
          f" slowest {max(seconds):.2f} s")


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--url", required=True)
  parser.add_argument("--sessions", type=int, default=8)
  parser.add_argument("--rounds", type=int, default=3)
  parser.add_argument("--pid", type=int, help="the server's, for its memory")
  arguments = parser.parse_args()
  alone = example_session(arguments.url)  # compiles the networks' programs
  print(_summary("one session alone, first", [alone.predict_seconds
                                               + alone.render_seconds]))
  done = []
  for round_index in range(arguments.rounds):
    start = time.perf_counter()
    done += concurrent_round(arguments.url, arguments.sessions)
    memory = (f", server {resident_mib(arguments.pid):.0f} MiB resident"
              if arguments.pid else "")
    print(f"round {round_index + 1}: {arguments.sessions} sessions in"
          f" {time.perf_counter() - start:.2f} s{memory}")
  print(_summary("predict", [s.predict_seconds for s in done]))
  print(_summary("render", [s.render_seconds for s in done]))
  print(_summary("session", [s.predict_seconds + s.render_seconds
                             for s in done]))


if __name__ == "__main__":
  main()
