"""Tests of the benchmark suite: case selection, the table, resuming."""

import json
import pathlib
import subprocess
import sys

import pytest

from benchmarks import suite

_REPO = pathlib.Path(__file__).resolve().parents[1]
_TRAIN_RESULTS = {
    "mode": "train", "device_count": 1, "device": "NVIDIA H100 80GB HBM3",
    "dtype": "bfloat16", "step_time_ms": 101.91, "images_per_sec": 314.0,
    "compile_s": 60.1, "flops_per_step": 26.16e12, "tflops_per_sec": 256.7,
    "mfu": 0.2596, "peak_memory_bytes": 13_590_000_000,
}


def test_cases_are_chosen_by_name_and_unknown_names_refused():
  assert [case.name for case in suite.select_cases("joint8, infer")] == [
      "joint8", "infer",
  ]
  assert len(suite.select_cases("all")) == len(suite.CASES)
  with pytest.raises(ValueError, match=r"Unknown case\(s\) \['joint64'\]"):
    suite.select_cases("joint8,joint64")


def test_a_train_row_shows_the_figures_of_its_json():
  row = suite.table_row(suite.select_cases("joint32")[0], _TRAIN_RESULTS)
  assert row == (
      "| joint32 | joint step, batch 32 | 1 x NVIDIA H100 80GB HBM3 | bfloat16"
      " | 101.9 | 314.0 | 60.1 | 26.16 | 256.7 | 26.0% | 12.66 |"
  )


def test_a_row_without_an_mfu_says_so():
  """An accelerator missing from the peak table has no MFU."""
  row = suite.table_row(
      suite.select_cases("joint32")[0], {**_TRAIN_RESULTS, "mfu": None}
  )
  assert "| 256.7 | n/a | 12.66 |" in row


_SUITE_ARGUMENTS = [
    "--config=configs/synthetic.py:tiny", "--config.no_such_field=1",
]


def _run_suite(out_dir, cases):
  return subprocess.run(
      [
          sys.executable, "-m", "benchmarks.suite", f"--out_dir={out_dir}",
          f"--cases={cases}", *_SUITE_ARGUMENTS,
      ],
      cwd=_REPO, capture_output=True, text=True, check=False,
  )


def test_finished_cases_are_read_back_and_failed_ones_reported(tmp_path):
  """joint32's JSON, from a run with the same arguments, is already there,
  so it is not rerun; sp32 fails on a bad override, is named in the error,
  and the table keeps joint32."""
  joint32 = suite.select_cases("joint32")[0]
  (tmp_path / "joint32.json").write_text(json.dumps({
      **_TRAIN_RESULTS, "arguments": [*_SUITE_ARGUMENTS, *joint32.arguments],
  }))
  result = _run_suite(tmp_path, "joint32,sp32")
  assert result.returncode != 0
  assert "Case(s) sp32 failed" in result.stderr
  assert "--phase=joint" not in result.stdout  # joint32 was not rerun
  table = (tmp_path / "table.md").read_text()
  assert "| joint32 | joint step, batch 32 |" in table
  assert "| sp32 |" not in table
  assert not (tmp_path / "sp32.json").exists()


def test_a_case_run_with_other_arguments_is_run_again(tmp_path):
  """joint32's JSON is from another config, so the suite runs it again (it
  fails on the bad override) and its old figures are gone, not tabulated."""
  joint32 = suite.select_cases("joint32")[0]
  (tmp_path / "joint32.json").write_text(json.dumps({
      **_TRAIN_RESULTS,
      "arguments": ["--config=configs/default.py", *joint32.arguments],
  }))
  result = _run_suite(tmp_path, "joint32")
  assert result.returncode != 0
  assert "Case(s) joint32 failed" in result.stderr
  assert "--phase=joint" in result.stdout  # it was rerun
  assert not (tmp_path / "joint32.json").exists()
  assert "| joint32 |" not in (tmp_path / "table.md").read_text()
