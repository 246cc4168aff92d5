r"""Runs the benchmark's standard cases on one config and tabulates them.

  python -m benchmarks.suite --config=configs/default.py --out_dir=/tmp/suite
  python -m benchmarks.suite --config=configs/default.py --cases=joint8,infer

Each case is one `python -m spg_jax.benchmarking.benchmark` process (so each reports its
own compile time and allocator peak), writing `CASE.json` in `--out_dir`;
the suite then prints a Markdown table of them all, ready for BENCHMARKS.md,
and writes it to `table.md`. Cases already in `--out_dir` with the same
arguments are read back, not rerun, so a run cut short (a lent GPU's time
per command is limited) resumes where it stopped; a case run with other
arguments (another config file, say) runs again. Only the command line is
compared: after editing a config file or the code, `--rerun` times every
case again. A case that fails
(out of memory, say) is reported and the others still run. Arguments the
suite does not know (timing flags, `--config.*` overrides) go to every
case, before the case's own, which win where both set a value.
"""

import argparse
import dataclasses
import json
import pathlib
import sys

from benchmarks import compare_torch
from spg_jax.runtime import atomic_files


@dataclasses.dataclass(frozen=True)
class Case:
  """One benchmark run: its name, what it shows, and its arguments."""

  name: str
  about: str
  arguments: tuple[str, ...]


def _train(phase: str, batch_size: int, *overrides: str) -> tuple[str, ...]:
  return (
      "--mode=train", f"--phase={phase}", f"--config.batch_size={batch_size}",
      *overrides,
  )


CASES = (
    Case("sp32", "sp step, batch 32", _train("sp", 32)),
    Case("sg32", "sg step, batch 32", _train("sg", 32)),
    Case("joint32", "joint step, batch 32", _train("joint", 32)),
    Case(
        "joint8",
        "joint step, batch 8 (the 16 GiB question)",
        _train("joint", 8),
    ),
    Case(
        "joint32_f32",
        "joint step, batch 32, float32",
        _train("joint", 32, "--config.dtype=float32"),
    ),
    Case(
        "joint32_remat",
        "joint step, batch 32, remat conv_outputs",
        _train("joint", 32, "--config.model.remat=conv_outputs"),
    ),
    Case("infer", "SP-Net + SG-Net inference", ("--mode=infer",)),
)
_BY_NAME = {case.name: case for case in CASES}
_COLUMNS = (
    "case", "what", "device", "dtype", "ms/step", "images/s", "compile s",
    "TFLOP/step", "TFLOP/s", "MFU", "peak memory GiB",
)


def select_cases(names: str) -> list[Case]:
  """The cases named in a comma-separated list, or all for 'all'.

  Raises:
    ValueError: a name is not a case.
  """
  if names == "all":
    return list(CASES)
  chosen = [name.strip() for name in names.split(",") if name.strip()]
  unknown = [name for name in chosen if name not in _BY_NAME]
  if unknown or not chosen:
    raise ValueError(
        f"Unknown case(s) {unknown or names!r}; choose from"
        f" {', '.join(_BY_NAME)} or 'all'."
    )
  return [_BY_NAME[name] for name in chosen]


def table_row(case: Case, results: dict) -> str:
  """One Markdown row of `results`, the JSON of `case`'s benchmark run."""
  if results["mode"] == "infer":
    best = results["throughput"][str(results["best_batch"])]
    what = (
        f"{case.about}: latency at batch 1; images/s, TFLOP and MFU at the"
        f" best batch ({results['best_batch']})"
    )
    flops = best["flops_per_step"] / results["best_batch"]
    flops_text = f"{flops / 1e12:.4g} per image"
  else:
    what = case.about
    flops_text = f"{results['flops_per_step'] / 1e12:.4g}"
  cells = (
      case.name,
      what,
      f"{results['device_count']} x {results['device']}",
      results["dtype"],
      f"{results['step_time_ms']:.1f}",
      f"{results['images_per_sec']:,.1f}",
      f"{results['compile_s']:.1f}",
      flops_text,
      f"{results['tflops_per_sec']:.4g}",
      "n/a" if results["mfu"] is None else f"{100 * results['mfu']:.1f}%",
      f"{results['peak_memory_bytes'] / 2**30:.2f}",
  )
  return "| " + " | ".join(cells) + " |"


def _ran_with(json_path: pathlib.Path, arguments: list[str]) -> bool:
  """Whether `json_path` holds a finished run with exactly `arguments`."""
  if not json_path.exists():
    return False
  return json.loads(json_path.read_text()).get("arguments") == arguments


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--out_dir", default="/tmp/spg_suite")
  parser.add_argument(
      "--cases", default="all", help="comma-separated, or 'all'"
  )
  parser.add_argument("--rerun", action="store_true", help="time cases again")
  known, forwarded = parser.parse_known_args()
  try:
    cases = select_cases(known.cases)
  except ValueError as error:
    parser.error(str(error))
  out_dir = pathlib.Path(known.out_dir)
  out_dir.mkdir(parents=True, exist_ok=True)
  rows = []
  failed = []
  for case in cases:
    json_path = out_dir / f"{case.name}.json"
    arguments = [*forwarded, *case.arguments]
    if known.rerun or not _ran_with(json_path, arguments):
      json_path.unlink(missing_ok=True)  # a failed rerun leaves no old figures
      if not compare_torch.run_benchmark(
          sys.executable, "spg_jax.benchmarking.benchmark", arguments, json_path
      ):
        failed.append(case.name)
        continue
    rows.append(table_row(case, json.loads(json_path.read_text())))
  table = "\n".join([
      "| " + " | ".join(_COLUMNS) + " |",
      "| " + " | ".join("---" for _ in _COLUMNS) + " |",
      *rows,
  ])
  print(table)
  atomic_files.write_text(out_dir / "table.md", table + "\n")
  if failed:
    sys.exit(
        f"Case(s) {', '.join(failed)} failed (their errors are above); the"
        " table has the others. Rerun the suite to retry only those."
    )


if __name__ == "__main__":
  main()
