"""Test setup: 4 virtual CPU devices, so data-parallel code runs for real.

XLA reads the flag when JAX initialises its backend, so it is set here before
any test imports jax.
"""

import os

os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4"
)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # pylint: disable=g-import-not-at-top,g-bad-import-order


@pytest.fixture(scope="session")
def scenes_data_dir(tmp_path_factory):
  """A TFDS data_dir holding the small synthetic_scenes/s32, built once."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  from spg_jax.datasets import synthetic_scenes  # pylint: disable=g-import-not-at-top,unused-import

  data_dir = tmp_path_factory.mktemp("tfds")
  tfds.builder("synthetic_scenes/s32", data_dir=str(data_dir)).download_and_prepare()
  return data_dir
