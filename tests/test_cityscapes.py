"""Cityscapes through TFDS's builder, from archives in the real layout."""

from cityscapesscripts.helpers import labels as cityscapes_official_labels
import ml_collections
import numpy as np
import pytest
import tensorflow_datasets as tfds

import conftest
from configs import cityscapes
from spg_jax.data import cityscapes_labels
from spg_jax.data import data_source
from spg_jax.data import input_pipeline
from spg_jax.data import preparation
from spg_jax.testing import cityscapes_archives


def _config(manual_dir, data_dir, **data) -> ml_collections.ConfigDict:
  config = cityscapes.get_config("tiny")
  config.data.manual_dir = str(manual_dir)
  config.data.data_dir = str(data_dir)
  config.data.image_size = 64
  config.eval.batch_size = 2
  config.data.update(data)
  return config


@pytest.fixture(scope="module")
def data_dir(cityscapes_manual_dir, tmp_path_factory):
  data_dir = tmp_path_factory.mktemp("tfds_cityscapes")
  preparation.prepare(_config(cityscapes_manual_dir, data_dir).data)
  return data_dir


def _eval_labels(config) -> np.ndarray:
  source = data_source.DataSource.resolve(config.data)
  return next(input_pipeline.create_eval_iterator(config, source))["label"]


def test_label_table_matches_the_official_definitions():
  official = cityscapes_official_labels
  ours = {label.label_id: label for label in cityscapes_labels.LABELS}
  official_ids = {l.id: l for l in official.labels if l.id >= 0}
  assert sorted(ours) == sorted(official_ids)
  for label_id, label in official_ids.items():
    assert ours[label_id].name == label.name
    assert ours[label_id].train_id == label.trainId
    assert ours[label_id].category_id == label.categoryId
    assert ours[label_id].color == label.color
    category = cityscapes_labels.CITYSCAPES_CATEGORIES.names[label.categoryId]
    assert category == label.category
  train_names = cityscapes_labels.CITYSCAPES_TRAIN_IDS.names
  for label in official.labels:
    if 0 <= label.trainId < 255:
      assert train_names[label.trainId] == label.name


def test_void_is_what_the_benchmark_leaves_out():
  official = [l for l in cityscapes_official_labels.labels if l.id >= 0]
  categories = cityscapes_labels.CITYSCAPES_CATEGORIES
  train_ids = cityscapes_labels.CITYSCAPES_TRAIN_IDS
  assert categories.void_id == 0 and train_ids.void_id == 19
  # The void category holds only labels the benchmark leaves out.
  assert all(
      label.ignoreInEval
      for label in official
      if label.categoryId == categories.void_id
  )
  # The void trainId class gathers exactly those labels.
  lookup = cityscapes_labels.LABEL_IDS_TO_TRAIN_IDS.lookup()
  assert {l.id for l in official if lookup[l.id] == train_ids.void_id} == {
      l.id for l in official if l.ignoreInEval
  }


def test_split_sizes(cityscapes_manual_dir, data_dir):
  del cityscapes_manual_dir
  builder = tfds.builder("cityscapes/semantic_segmentation", data_dir=data_dir)
  splits = builder.info.splits
  assert splits["train"].num_examples == 3
  assert splits["validation"].num_examples == 2
  assert splits["test"].num_examples == 1


def test_label_ids_land_in_their_categories(cityscapes_manual_dir, data_dir):
  labels = _eval_labels(_config(cityscapes_manual_dir, data_dir))
  categories = cityscapes_labels.CITYSCAPES_CATEGORIES
  # Squashed 1024x2048 -> 64x64: the car (rows < 512, cols < 512) covers
  # rows < 32, cols < 16; 'static' (rows >= 768, cols >= 1536) the corner.
  assert labels.shape == (2, 64, 64)
  assert np.all(labels[:, :32, :16] == categories.index("vehicle"))
  assert np.all(labels[:, 48:, 48:] == categories.index("void"))
  assert np.all(labels[:, 32:48, :] == categories.index("flat"))


def test_label_ids_land_in_their_train_ids(cityscapes_manual_dir, data_dir):
  config = _config(
      cityscapes_manual_dir,
      data_dir,
      classes="cityscapes_train_ids",
      label_map="cityscapes_label_ids_to_train_ids",
  )
  labels = _eval_labels(config)
  train_ids = cityscapes_labels.CITYSCAPES_TRAIN_IDS
  assert np.all(labels[:, :32, :16] == train_ids.index("car"))  # 13
  assert np.all(labels[:, 48:, 48:] == train_ids.index("void"))  # 19
  assert np.all(labels[:, 32:48, :] == train_ids.index("road"))  # 0
  assert train_ids.index("car") == 13 and train_ids.index("void") == 19


def test_crop_mode_takes_a_square_from_the_frame(cityscapes_manual_dir, data_dir):
  config = _config(cityscapes_manual_dir, data_dir, resize="crop")
  labels = _eval_labels(config)
  # Scaled to 64x128, evaluation crops the central 64 columns: frame
  # columns 512..1535, right of the car and left of the 'static' block.
  assert labels.shape == (2, 64, 64)
  assert np.all(labels == cityscapes_labels.CITYSCAPES_CATEGORIES.index("flat"))
  source = data_source.DataSource.resolve(config.data)
  train = next(input_pipeline.create_train_iterator(config, source))
  assert train["image"].shape == (4, 64, 64, 3)


def test_missing_archives_name_files_place_and_homepage(tmp_path):
  config = _config(tmp_path / "nowhere", tmp_path / "tfds")
  with pytest.raises(preparation.DataError) as error:
    preparation.prepare(config.data)
  message = str(error.value)
  assert cityscapes_archives.IMAGES_ARCHIVE in message
  assert cityscapes_archives.LABELS_ARCHIVE in message
  assert str(tmp_path / "nowhere" / cityscapes_archives.LABELS_ARCHIVE) in message
  assert "https://www.cityscapes-dataset.com" in message
  assert "--config.data.manual_dir" in message


def test_a_truncated_archive_is_named(cityscapes_manual_dir, tmp_path):
  manual_dir = tmp_path / "manual"
  manual_dir.mkdir()
  for name in (cityscapes_archives.IMAGES_ARCHIVE,
               cityscapes_archives.LABELS_ARCHIVE):
    data = (cityscapes_manual_dir / name).read_bytes()
    (manual_dir / name).write_bytes(data[: len(data) // 2]
                                    if name == cityscapes_archives.LABELS_ARCHIVE
                                    else data)
  with pytest.raises(preparation.DataError) as error:
    preparation.prepare(_config(manual_dir, tmp_path / "tfds").data)
  assert str(manual_dir / cityscapes_archives.LABELS_ARCHIVE) in str(error.value)
  assert "download it again" in str(error.value)


def test_a_label_id_outside_the_table_names_the_frame(tmp_path):
  label_ids = conftest.patched_label_ids()
  label_ids[0, 0] = 40  # Cityscapes' labelIds stop at 33.
  frames = {
      "train": [conftest.cityscapes_frame("aachen", 0, label_ids)],
      "val": [conftest.cityscapes_frame("lindau", 7, label_ids)],
      "test": [conftest.cityscapes_frame("berlin", 0, label_ids)],
  }
  cityscapes_archives.write_archives(tmp_path / "manual", frames)
  config = _config(tmp_path / "manual", tmp_path / "tfds")
  config.eval.batch_size = 1
  with pytest.raises(preparation.DataError) as error:
    _eval_labels(config)
  message = str(error.value)
  assert "lindau_000000_000007" in message
  assert "40" in message
  assert "label_map" in message
