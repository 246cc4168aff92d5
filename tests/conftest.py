"""Test setup: 4 virtual CPU devices, so data-parallel code runs for real,
XLA:CPU compiling quickly, and one persistent compilation cache for the
whole session.

XLA reads the flag when JAX initialises its backend, and JAX its cache
directory when it first compiles, so both are set here before any test
imports jax.
"""

import dataclasses
import functools
import http.server
import os
import pathlib
import shutil
import tempfile
import threading
from typing import Any

# LLVM's optimisation level 0: compiling, not running, is what the tests
# spend their time on, and at level 0 XLA:CPU compiles the train steps in
# about half the time (the 4-device joint-step test: 117 s -> 65 s on a
# 2-core VM). The programs compute the same operations; every comparison
# in the suite is between programs compiled alike, or within a tolerance.
os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + (
    " --xla_force_host_platform_device_count=4"
    " --xla_backend_optimization_level=0"
)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Compiling dominates the suite on a 2-core machine, and many tests build the
# same programs: the end-to-end runs' train steps, the inference functions
# of one workdir, a run resumed after an interruption. The pytest process
# makes one cache directory; its xdist workers and every subprocess a test
# starts inherit it, so each program compiles once per session, whichever
# test needs it first (a cached program computes exactly what a fresh
# compile would). test_compilation_cache runs without it.
_SESSION_CACHE_VARIABLE = "JAX_COMPILATION_CACHE_DIR"
_OWN_SESSION_CACHE = _SESSION_CACHE_VARIABLE not in os.environ
if _OWN_SESSION_CACHE:
  os.environ[_SESSION_CACHE_VARIABLE] = tempfile.mkdtemp(
      prefix="spg_jax_tests_xla_cache_"
  )

# Tests never read the user's cache of pretrained weights: the session's
# is empty, and tests that need weights make them (`seeded_weights_dir`).
os.environ["SPG_JAX_WEIGHTS"] = tempfile.mkdtemp(
    prefix="spg_jax_tests_weights_"
)

import pytest  # pylint: disable=g-import-not-at-top,g-bad-import-order


def pytest_sessionfinish(session):
  """The process that made the session's cache removes it at the end."""
  del session
  if _OWN_SESSION_CACHE:
    shutil.rmtree(os.environ[_SESSION_CACHE_VARIABLE], ignore_errors=True)
  shutil.rmtree(os.environ["SPG_JAX_WEIGHTS"], ignore_errors=True)


@pytest.fixture(scope="session")
def seeded_weights_dir(tmp_path_factory):
  """A weights cache holding LPIPS and VGG19 converted, by the real
  converters, from seeded weights in the published names and shapes (the
  published files are not downloaded in tests)."""
  from spg_jax.pretrained import alexnet  # pylint: disable=g-import-not-at-top
  from spg_jax.pretrained import converted  # pylint: disable=g-import-not-at-top
  from spg_jax.pretrained import lpips  # pylint: disable=g-import-not-at-top
  from spg_jax.pretrained import vgg  # pylint: disable=g-import-not-at-top
  import torch_references  # pylint: disable=g-import-not-at-top

  cache = tmp_path_factory.mktemp("weights")
  converted.save("lpips", lpips.params_from_torch(
      torch_references.random_weights(alexnet.TORCH_SHAPES, 1),
      torch_references.random_weights(lpips.HEAD_TORCH_SHAPES, 1),
      "seeded AlexNet", "seeded heads"), cache)
  converted.save("vgg19", vgg.params_from_torch(
      torch_references.random_weights(vgg.TORCH_SHAPES, 2), "seeded VGG19"),
                 cache)
  return cache


@pytest.fixture(scope="session")
def scenes_data_dir(tmp_path_factory):
  """A TFDS data_dir holding the small synthetic_scenes/s32, built once."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  from spg_jax.data.builders import synthetic_scenes  # pylint: disable=g-import-not-at-top,unused-import

  data_dir = tmp_path_factory.mktemp("tfds")
  tfds.builder("synthetic_scenes/s32", data_dir=str(data_dir)).download_and_prepare()
  return data_dir


@pytest.fixture
def scenes_config(scenes_data_dir):
  """The tiny synthetic config reading the 32x32 scenes of `scenes_data_dir`."""
  from configs import synthetic  # pylint: disable=g-import-not-at-top

  config = synthetic.get_config("tiny")
  config.data.name = "synthetic_scenes/s32"
  config.data.data_dir = str(scenes_data_dir)
  config.data.image_size = 32
  return config


def cityscapes_frame(city, index, label_ids):
  """A frame of the fake Cityscapes: a synthetic image and given labelIds."""
  from spg_jax.testing import cityscapes_archives  # pylint: disable=g-import-not-at-top

  image = cityscapes_archives.synthetic_frame([index], city, index).image
  return cityscapes_archives.Frame(city, 0, index, image, label_ids)


def patched_label_ids():
  """Road everywhere, a car over the top-left quarter of the width, a
  'static' (void) block bottom-right; see test_cityscapes for what each
  becomes."""
  import numpy as np  # pylint: disable=g-import-not-at-top

  label_ids = np.full([1024, 2048], 7, np.uint8)
  label_ids[:512, :512] = 26
  label_ids[768:, 1536:] = 4
  return label_ids


@pytest.fixture(scope="session")
def cityscapes_manual_dir(tmp_path_factory):
  """Both Cityscapes archives, in the real layout: 3 train frames in 2
  cities, 2 val, 1 test, every frame labelled by `patched_label_ids`."""
  from spg_jax.testing import cityscapes_archives  # pylint: disable=g-import-not-at-top

  manual_dir = tmp_path_factory.mktemp("cityscapes_manual")
  label_ids = patched_label_ids()
  cities = {"train": ("aachen", "aachen", "bochum"), "val": ("frankfurt",) * 2,
            "test": ("berlin",)}
  frames = {
      split: [cityscapes_frame(city, i, label_ids) for i, city in enumerate(names)]
      for split, names in cities.items()
  }
  cityscapes_archives.write_archives(manual_dir, frames)
  return manual_dir


@pytest.fixture(scope="session")
def tiny_workdir(tmp_path_factory):
  """A workdir as a tiny run leaves it: config.json and an Orbax checkpoint.

  The networks are freshly initialised, not trained (training is
  test_train's business): inference tests check invariants, which hold for
  any weights, and save the minute that compiling the training steps takes.
  """
  import jax  # pylint: disable=g-import-not-at-top
  from configs import default  # pylint: disable=g-import-not-at-top
  from configs import synthetic  # pylint: disable=g-import-not-at-top
  from spg_jax.runtime import atomic_files  # pylint: disable=g-import-not-at-top
  from spg_jax.training import checkpoints  # pylint: disable=g-import-not-at-top
  from spg_jax.training import steps  # pylint: disable=g-import-not-at-top
  from spg_jax.models import spg  # pylint: disable=g-import-not-at-top

  config = default.with_segmenter(synthetic.get_config("tiny"))
  config.data.name = "synthetic_scenes/s32"
  workdir = tmp_path_factory.mktemp("tiny_run")
  atomic_files.write_text(workdir / "config.json", config.to_json_best_effort())
  state = steps.create_train_state(
      config, spg.Networks.from_config(config), jax.random.key(0)
  )
  manager = checkpoints.make_manager(workdir, config)
  checkpoints.save(manager, 6, state, "joint", config)
  manager.wait_until_finished()
  return workdir


@dataclasses.dataclass(frozen=True)
class TrainedRun:
  """A finished tiny training run on the 4 devices, and what it evaluated.

  Attributes:
    config: the run's config.
    workdir: the run's workdir: config.json, checkpoints/, samples/, eval/.
    results: the final evaluation, as `train_and_evaluate` returned it.
    evaluations: the evaluation of the initial parameters (with the loop's
      own step, on the same batches), then those the loop ran, in order.
    eval_steps: the evaluation steps the loop made.
  """

  config: Any
  workdir: pathlib.Path
  results: dict[str, float]
  evaluations: list[dict[str, float]]
  eval_steps: list[Any]


@pytest.fixture(scope="session")
def trained_run(scenes_data_dir, tmp_path_factory):
  """A tiny run that trains for real on the 4 devices, once per session.

  It is long enough, at a learning rate high enough, that every network
  learns: its hole error and mIoU beat those of its initial parameters by a
  wide margin on every seed tried. The end-to-end test checks it; tests
  that need a checkpoint written by a data-parallel run read its workdir.
  """
  import jax  # pylint: disable=g-import-not-at-top
  from configs import default  # pylint: disable=g-import-not-at-top
  from configs import synthetic  # pylint: disable=g-import-not-at-top
  from spg_jax.evaluation import evaluate  # pylint: disable=g-import-not-at-top
  from spg_jax.models import spg  # pylint: disable=g-import-not-at-top
  from spg_jax.training import loop  # pylint: disable=g-import-not-at-top
  from spg_jax.training import steps  # pylint: disable=g-import-not-at-top

  config = default.with_segmenter(synthetic.get_config("tiny"))
  config.data.name = "synthetic_scenes/s32"
  config.data.data_dir = str(scenes_data_dir)
  # The session's compilation cache (see above), not one in the workdir.
  config.compilation_cache_dir = ""
  # 10 times the default rate: 20 steps then train every network visibly.
  for phase, phase_steps in (("seg", 6), ("sp", 6), ("sg", 6), ("joint", 2)):
    config.schedule[phase].update(dict(steps=phase_steps, learning_rate=2e-3))
  # Evaluations after the seg, sp and sg phases, and at the end.
  config.eval_every_steps = 6
  workdir = tmp_path_factory.mktemp("trained_run")
  eval_steps, evaluations = [], []
  make_eval_step, run_evaluation = evaluate.make_eval_step, evaluate.evaluate

  def recorded_eval_step(*args, **kwargs):
    eval_steps.append(make_eval_step(*args, **kwargs))
    return eval_steps[-1]

  def recorded_evaluation(eval_step, params, batches, *args, **kwargs):
    batches = list(batches)  # read once, evaluated twice the first time
    if not evaluations:
      initial = steps.create_train_state(
          config, spg.Networks.from_config(config), jax.random.key(config.seed)
      ).params
      initial = jax.device_put(
          initial, jax.tree.map(lambda leaf: leaf.sharding, params)
      )
      evaluations.append(
          run_evaluation(eval_step, initial, batches, *args, **kwargs)
      )
    evaluations.append(
        run_evaluation(eval_step, params, batches, *args, **kwargs)
    )
    return evaluations[-1]

  with pytest.MonkeyPatch.context() as patch:
    patch.setattr(evaluate, "make_eval_step", recorded_eval_step)
    patch.setattr(evaluate, "evaluate", recorded_evaluation)
    results = loop.train_and_evaluate(config, str(workdir))
  return TrainedRun(config, workdir, results, evaluations, eval_steps)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):

  def log_message(self, *args):
    del args


@pytest.fixture
def server(tmp_path):
  """Serves tmp_path/served over HTTP; yields (folder, base URL, requests)."""
  served = tmp_path / "served"
  served.mkdir()
  requests = []

  class Recording(_QuietHandler):

    def do_GET(self):
      requests.append(self.path)
      super().do_GET()

  handler = functools.partial(Recording, directory=str(served))
  httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
  thread = threading.Thread(target=httpd.serve_forever, daemon=True)
  thread.start()
  yield served, f"http://127.0.0.1:{httpd.server_address[1]}", requests
  httpd.shutdown()
  httpd.server_close()
