"""Tests of the trace reader: busy and self times by hand, and a real trace
of the benchmark's train step."""

import gzip
import json
import pathlib
import re
import subprocess
import sys

import pytest

from benchmarks import trace_summary

_REPO = pathlib.Path(__file__).resolve().parents[1]


def _span(tid, start, duration, name):
  return {"ph": "X", "pid": 1, "tid": tid, "ts": start, "dur": duration,
          "name": name}


# Two steps on one thread: an executor span (0-100 us, then 200-300 us)
# holding two operations each; a lone span on another thread.
_EVENTS = [
    {"ph": "M", "pid": 1, "name": "process_name",
     "args": {"name": "/device:GPU:0"}},
    {"ph": "M", "pid": 1, "tid": 7, "name": "thread_name",
     "args": {"name": "XLA Ops"}},
    _span(7, 0, 100, "Execute"),
    _span(7, 10, 50, "convolution.3"),
    _span(7, 60, 30, "add_fusion.1"),
    _span(7, 200, 100, "Execute"),
    _span(7, 200, 70, "convolution.4"),
    _span(7, 280, 10, "add_fusion.1"),
    _span(8, 0, 40, "memcpy"),
]


def test_busy_time_counts_nested_spans_once_and_self_time_excludes_them():
  timelines = trace_summary.summarise(_EVENTS, steps=2)
  ops, other = timelines
  assert (ops.process, ops.thread) == ("/device:GPU:0", "XLA Ops")
  assert ops.busy_ms == pytest.approx(0.1)  # (100 + 100) us / 2 steps
  assert ops.self_ms_by_operation == pytest.approx({
      "Execute": (20 + 20) / 2e3,
      "convolution.3": 50 / 2e3,
      "convolution.4": 70 / 2e3,
      "add_fusion.1": (30 + 10) / 2e3,
  })
  assert (other.thread, other.busy_ms) == ("8", pytest.approx(0.02))


def test_a_span_outlasting_its_parent_takes_only_the_shared_part():
  """A (0-10 us) and B (5-95 us) overlap by 5 us: busy is their union,
  95 us, and A keeps the 5 us that B does not cover."""
  (timeline,) = trace_summary.summarise(
      [_span(7, 0, 10, "A"), _span(7, 5, 90, "B")], steps=1
  )
  assert timeline.busy_ms == pytest.approx(0.095)
  assert timeline.self_ms_by_operation == pytest.approx(
      {"A": 0.005, "B": 0.090}
  )


@pytest.mark.parametrize(
    "name, kind",
    [
        ("add_fusion.12", "add_fusion"),
        ("loop_add_fusion_16", "loop_add_fusion"),
        ("wrapped_transpose_89", "wrapped_transpose"),
        ("memcpy128", "memcpy128"),
        ("sm90_xmma_fprop_tilesize128x256x64_g1", "sm90_xmma_fprop_tilesize128x256x64_g1"),
    ],
)
def test_an_operations_kind_drops_only_xlas_numeric_suffix(name, kind):
  assert trace_summary.operation_kind(name) == kind


def test_operations_are_summed_by_kind_on_request():
  ops = trace_summary.summarise(_EVENTS, steps=2, by_kind=True)[0]
  assert ops.self_ms_by_operation == pytest.approx({
      "Execute": 0.02, "convolution": 0.06, "add_fusion": 0.02,
  })
  table = trace_summary.to_markdown([ops], top=1)
  assert "0.10 ms busy per step" in table
  assert "| `convolution` | 0.060 | 60.0% |" in table
  assert "add_fusion" not in table


def test_a_directory_without_a_trace_is_refused(tmp_path):
  with pytest.raises(FileNotFoundError, match="No \\*.trace.json.gz under"):
    trace_summary.find_trace(tmp_path)


def test_the_benchmark_traces_its_steps_for_the_summary(tmp_path):
  """A real trace: the benchmark's traced train steps show up as the XLA:CPU
  client's convolutions, and the file reads back in either layout."""
  trace_dir = tmp_path / "trace"
  result = subprocess.run(
      [
          sys.executable, "-m", "spg_jax.benchmarking.benchmark",
          "--config=configs/synthetic.py:tiny", "--mode=train", "--phase=sp",
          "--warmup=1", "--windows=1", "--window_calls=1",
          f"--profile_dir={trace_dir}", "--profile_steps=2",
      ],
      cwd=_REPO, capture_output=True, text=True, check=False,
  )
  assert result.returncode == 0, result.stderr[-3000:]
  results = json.loads(result.stdout[result.stdout.index("{"):])
  hlo_path = trace_dir / "optimized_hlo.txt"
  assert results["profile"] == {
      "dir": str(trace_dir), "steps": 2, "hlo": str(hlo_path)
  }
  path = trace_summary.find_trace(trace_dir)
  timelines = trace_summary.summarise(
      trace_summary.load_events(path), steps=2, by_kind=True
  )
  kinds = set().union(*(t.self_ms_by_operation for t in timelines))
  assert kinds & {"convolution", "conv_general_dilated", "ynn_fusion"}
  # The HLO is the traced program: its instructions name the traced ops.
  hlo = hlo_path.read_text()
  traced = set().union(*(
      t.self_ms_by_operation for t in trace_summary.summarise(
          trace_summary.load_events(path), steps=2)
  ))
  numbered = {name for name in traced if re.search(r"[._]\d+$", name)}
  assert numbered and any(f"%{name} " in hlo for name in numbered), numbered
  listed = tmp_path / "listed.trace.json.gz"
  with gzip.open(listed, "wt") as file:
    json.dump(trace_summary.load_events(path), file)
  assert trace_summary.load_events(listed) == trace_summary.load_events(path)
