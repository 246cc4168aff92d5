r"""Runs the JAX benchmark and the PyTorch twin on one config and compares.

  python -m benchmarks.compare_torch --config=configs/synthetic.py \
      --mode=train --torch_python=/path/to/venv-with-torch/bin/python \
      --out_dir=/tmp/compare

Every argument it does not know (`--config`, `--mode`, `--phase`, timing and
`--config.*` overrides) goes to both programs unchanged, one after the other
on the same machine. Each writes its JSON to `--out_dir`; this prints the
two side by side and the ratio of JAX's images/s to PyTorch's. PyTorch may
live in another Python (`--torch_python`), since spg_jax does not depend on
it; that Python must also be able to import spg_jax (for the config file and
the peak table), e.g. a venv made with --system-site-packages.

The two `compile_s` differ in what they hold: JAX's is the compilation
alone, PyTorch's the first call, compilation and one step together.
"""

import argparse
import json
import pathlib
import shutil
import subprocess
import sys

from spg_jax.benchmarking import benchmark
from spg_jax.runtime import atomic_files

_REPO = pathlib.Path(__file__).resolve().parents[1]


def run_benchmark(
    python: str, module: str, arguments: list[str], json_path: pathlib.Path
) -> bool:
  """Runs `python -m module ARGUMENTS --json=json_path` from the repository
  root, echoing the command; True if it succeeded. Errors go to stderr."""
  command = [python, "-m", module, *arguments, f"--json={json_path}"]
  print("$", " ".join(command), flush=True)
  result = subprocess.run(
      command, cwd=_REPO, check=False, stdout=subprocess.DEVNULL
  )
  return result.returncode == 0


def _run(
    python: str, module: str, arguments: list[str], json_path: pathlib.Path
) -> dict:
  if not run_benchmark(python, module, arguments, json_path):
    sys.exit(f"{module} failed; its error is above.")
  return json.loads(json_path.read_text())


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--torch_python", default=sys.executable)
  parser.add_argument("--out_dir", default="/tmp/spg_compare")
  known, forwarded = parser.parse_known_args()
  if shutil.which(known.torch_python) is None:
    parser.error(
        f"--torch_python={known.torch_python} is not an executable Python;"
        " give the path of one that can import torch and spg_jax."
    )
  out_dir = pathlib.Path(known.out_dir)
  out_dir.mkdir(parents=True, exist_ok=True)
  jax_results = _run(
      sys.executable, "spg_jax.benchmarking.benchmark", forwarded, out_dir / "jax.json"
  )
  torch_results = _run(
      known.torch_python,
      "benchmarks.torch_reference",
      forwarded,
      out_dir / "torch.json",
  )
  print(f"{'':20} {'JAX':>24} {'PyTorch':>24}")
  for key in benchmark.RESULT_KEYS:
    print(
        f"{key:20} {jax_results[key]!s:>24.24}"
        f" {torch_results[key]!s:>24.24}"
    )
  ratio = jax_results["images_per_sec"] / torch_results["images_per_sec"]
  print(f"JAX / PyTorch images/s: {ratio:.2f}x")
  atomic_files.write_text(
      out_dir / "ratio.json",
      json.dumps({"jax_over_torch_images_per_sec": ratio}) + "\n",
  )


if __name__ == "__main__":
  main()
