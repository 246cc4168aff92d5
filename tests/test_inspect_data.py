"""Tests of the data inspection tool on the synthetic scenes."""

import json
import pathlib
import subprocess
import sys

import numpy as np
from PIL import Image
import pytest

from spg_jax.data import classes
from spg_jax.data import data_source
from spg_jax.data import input_pipeline
from spg_jax.data import inspect_data


@pytest.fixture
def config(scenes_config):
  scenes_config.eval.batch_size = 4
  return scenes_config


def test_writes_the_examples_the_pipeline_yields(config, tmp_path, capsys):
  frequencies = inspect_data.inspect(config, "eval", 6, str(tmp_path))
  grid = np.asarray(Image.open(tmp_path / "eval_examples.png"))
  assert grid.shape == (6 * 32, 4 * 32, 3)
  source = data_source.DataSource.resolve(config.data)
  first = next(input_pipeline.create_eval_iterator(config, source))
  table = classes.get_class_table(config.data.classes)
  # Row 0: the image, then its labels in the class colours.
  np.testing.assert_array_equal(
      grid[:32, :32], np.round((first["image"][0] + 1) * 127.5)
  )
  np.testing.assert_array_equal(
      grid[:32, 32:64], table.colorize(first["label"][0])
  )
  hole = first["mask"][0, ..., 0] > 0
  np.testing.assert_array_equal(grid[:32, 64:96][..., 0] == 255, hole)
  saved = json.loads((tmp_path / "class_frequencies.json").read_text())
  assert saved == frequencies
  assert sum(f["overall"] for f in frequencies.values()) == pytest.approx(1.0)
  assert sum(f["hole"] for f in frequencies.values()) == pytest.approx(1.0)
  printed = capsys.readouterr().out
  assert "6 eval examples of synthetic_scenes/s32" in printed
  assert "sky" in printed and "Holes cover" in printed


def test_frequencies_count_pixels_of_each_class():
  table = classes.get_class_table("oxford_pet_trimap")
  labels = np.array([[[0, 0], [1, 2]]])
  mask = np.array([[[[1], [0]], [[1], [1]]]], np.float32)
  frequencies = inspect_data.class_frequencies(
      {"label": labels, "mask": mask}, table
  )
  assert frequencies["background"] == {"overall": 0.5, "hole": 1 / 3}
  assert frequencies["pet"] == {"overall": 0.25, "hole": 1 / 3}
  assert frequencies["outline"] == {"overall": 0.25, "hole": 1 / 3}


def test_the_legend_has_a_row_per_class():
  table = classes.get_class_table("helen")
  image = inspect_data.legend(table)
  assert image.shape[0] == 18 * table.num_classes
  # Each row's swatch is filled with its class's colour.
  for index, color in enumerate(table.colors):
    np.testing.assert_array_equal(image[index * 18 + 9, 16], color)


def test_command_line_writes_the_grid_and_prints_frequencies(
    scenes_data_dir, tmp_path
):
  result = subprocess.run(
      [
          sys.executable, "-m", "spg_jax.data.inspect_data",
          "--config=configs/synthetic.py:tiny",
          "--config.data.name=synthetic_scenes/s32",
          f"--config.data.data_dir={scenes_data_dir}",
          "--config.data.image_size=32",
          "--num=3",
          f"--out={tmp_path}",
      ],
      cwd=pathlib.Path(__file__).resolve().parents[1],
      capture_output=True,
      text=True,
      check=False,
  )
  assert result.returncode == 0, result.stderr[-2000:]
  assert "3 train examples of synthetic_scenes/s32" in result.stdout
  grid = np.asarray(Image.open(tmp_path / "train_examples.png"))
  assert grid.shape == (3 * 32, 4 * 32, 3)
  assert (tmp_path / "legend.png").exists()
