"""Tests of the persistent compilation cache: where it goes, and that a
second run reads its steps back instead of compiling them."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

from spg_jax.runtime import compilation_cache

_REPO = pathlib.Path(__file__).resolve().parents[1]

# One tiny training run in a fresh process (JAX opens the cache once per
# process), counting the compilations read from the persistent cache (hits;
# a program compiled twice in one run is one) and those compiled and
# written to it (misses).
_RUN = """
import json, sys
import jax
# Every program, however quick to compile, so that the counts are exact.
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
from configs import synthetic
from spg_jax.training import loop
events = []
jax.monitoring.register_event_listener(
    lambda event, **kwargs: events.append(event.split("/")[-1])
)
config = synthetic.get_config("tiny")
config.data.name = "synthetic_scenes/s32"
# One phase, one train step to compile: the cache treats every program
# alike, and each train step costs tens of seconds on 2 cores.
config.schedule.sp.steps = config.schedule.joint.steps = 0
config.data.data_dir, workdir, config.compilation_cache_dir = sys.argv[1:4]
results = loop.train_and_evaluate(config, workdir)
print(json.dumps({
    "hits": events.count("cache_hits"),
    "misses": events.count("cache_misses"),
    "results": results,
}))
"""


@pytest.mark.parametrize(
    "setting, expected",
    [
        ("", None),
        ("compilation_cache", "/runs/a/compilation_cache"),
        ("cache/xla", "/runs/a/cache/xla"),
        ("/shared/xla", "/shared/xla"),
        ("~/xla", os.path.expanduser("~/xla")),
        ("gs://bucket/xla", "gs://bucket/xla"),
        ("file:///shared/xla", "file:///shared/xla"),
    ],
)
def test_the_setting_is_resolved_against_the_workdir(setting, expected):
  assert compilation_cache.resolve(setting, "/runs/a") == expected


def _train(data_dir, workdir, cache):
  result = subprocess.run(
      [sys.executable, "-c", _RUN, str(data_dir), str(workdir), cache],
      cwd=_REPO,
      capture_output=True,
      text=True,
      check=False,
      # Without the test session's cache (conftest): the run opens its own.
      env={**{key: value for key, value in os.environ.items()
              if key != "JAX_COMPILATION_CACHE_DIR"},
           "PYTHONPATH": str(_REPO)},
  )
  assert result.returncode == 0, result.stderr[-3000:]
  return json.loads(result.stdout.strip().splitlines()[-1])


def test_a_second_run_reads_the_compiled_steps_back(tmp_path, scenes_data_dir):
  """The first run, in its workdir's cache, writes every program it
  compiles, its train step among them; a run in another workdir
  sharing that cache (an absolute path) reads every one back, compiles none
  anew, and trains to the same metrics."""
  first = _train(scenes_data_dir, tmp_path / "first", "compilation_cache")
  cache = tmp_path / "first" / "compilation_cache"
  entries = sorted(path.name for path in cache.iterdir())
  assert first["misses"] == len(entries)
  assert len([name for name in entries if name.startswith("jit_step-")]) == 1
  second = _train(scenes_data_dir, tmp_path / "second", str(cache))
  assert second["misses"] == 0
  assert second["hits"] == first["hits"] + first["misses"]
  assert sorted(path.name for path in cache.iterdir()) == entries
  assert not (tmp_path / "second" / "compilation_cache").exists()
  assert second["results"] == first["results"]
