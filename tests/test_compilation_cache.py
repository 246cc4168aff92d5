"""Tests of the persistent compilation cache: where it goes, and that a
second run reads its steps back instead of compiling them."""

import json
import os
import pathlib
import subprocess
import sys

from etils import epath
import pytest

from spg_jax import compilation_cache

_REPO = pathlib.Path(__file__).resolve().parents[1]

# One tiny training run in a fresh process (JAX opens the cache once per
# process), counting the compilations read from the persistent cache.
_RUN = """
import json, sys
import jax
from configs import synthetic
from spg_jax import train
hits = []
jax.monitoring.register_event_listener(
    lambda event, **kwargs: hits.append(event)
    if event == "/jax/compilation_cache/cache_hits" else None
)
config = synthetic.get_config("tiny")
config.data.name = "synthetic_scenes/s32"
config.data.data_dir, workdir, config.compilation_cache_dir = sys.argv[1:4]
results = train.train_and_evaluate(config, workdir)
print(json.dumps({"hits": len(hits), "results": results}))
"""


@pytest.mark.parametrize(
    "setting, expected",
    [
        ("", None),
        ("compilation_cache", "/runs/a/compilation_cache"),
        ("/shared/xla", "/shared/xla"),
        ("gs://bucket/xla", "gs://bucket/xla"),
    ],
)
def test_the_setting_is_resolved_against_the_workdir(setting, expected):
  path = compilation_cache.resolve(setting, "/runs/a")
  assert path == (None if expected is None else epath.Path(expected))


def _train(data_dir, workdir, cache):
  result = subprocess.run(
      [sys.executable, "-c", _RUN, str(data_dir), str(workdir), cache],
      cwd=_REPO,
      capture_output=True,
      text=True,
      check=False,
      env={**os.environ, "PYTHONPATH": str(_REPO)},
  )
  assert result.returncode == 0, result.stderr[-3000:]
  return json.loads(result.stdout.strip().splitlines()[-1])


def test_a_second_run_reads_the_compiled_steps_back(tmp_path, scenes_data_dir):
  """The first run, in its workdir's cache, compiles everything; a run in
  another workdir sharing that cache (an absolute path) reads at least the
  three train steps back, and trains to the same metrics."""
  first = _train(scenes_data_dir, tmp_path / "first", "compilation_cache")
  cache = tmp_path / "first" / "compilation_cache"
  assert first["hits"] == 0
  assert len(list(cache.glob("*step*"))) >= 3
  second = _train(scenes_data_dir, tmp_path / "second", str(cache))
  assert second["hits"] >= 3
  assert not (tmp_path / "second" / "compilation_cache").exists()
  assert second["results"] == first["results"]
