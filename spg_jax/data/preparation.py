"""Preparing a TFDS dataset, with clear errors when its files are missing.

Datasets such as Cityscapes and Helen cannot be downloaded by a program: a
user fetches the archives and places them in `config.data.manual_dir`. Before
anything compiles, `prepare` checks that those archives are there and are zip
files holding what the builder reads, and says exactly which file is wrong,
where to get it and which path was searched. Other datasets (the synthetic
scenes, TFDS catalog datasets that download by themselves) are built as TFDS
builds them.
"""

import dataclasses
import os
import zipfile

from etils import epath
import ml_collections
import tensorflow as tf
import tensorflow_datasets as tfds

# Importing helen and synthetic_scenes also registers their TFDS builders.
from spg_jax.data.builders import helen
from spg_jax.data.builders import synthetic_scenes  # pylint: disable=unused-import

# The two archives of Cityscapes' downloads that TFDS's cityscapes builder reads.
CITYSCAPES_IMAGES_ARCHIVE = "leftImg8bit_trainvaltest.zip"
CITYSCAPES_LABELS_ARCHIVE = "gtFine_trainvaltest.zip"


class DataError(Exception):
  """The data is missing or broken; the message says which file and what to do."""


@dataclasses.dataclass(frozen=True)
class ManualDownload:
  """The archives a user must fetch for a dataset.

  Attributes:
    homepage: where to register and download them.
    archives: each archive's file name and a folder that a valid archive
      holds (its top-level layout), so a wrong file is caught before a build.
  """

  homepage: str
  archives: tuple[tuple[str, str], ...]


MANUAL_DOWNLOADS = {
    "cityscapes": ManualDownload(
        homepage="https://www.cityscapes-dataset.com/downloads/",
        archives=(
            (CITYSCAPES_IMAGES_ARCHIVE, "leftImg8bit/train/"),
            (CITYSCAPES_LABELS_ARCHIVE, "gtFine/train/"),
        ),
    ),
    "helen": ManualDownload(
        homepage=helen.HOMEPAGE,
        archives=((helen.ARCHIVE_NAME, "images/"),),
    ),
}


def manual_download_for(dataset_name: str) -> ManualDownload | None:
  """Returns what `dataset_name` ('name/config:version') needs fetched by hand."""
  return MANUAL_DOWNLOADS.get(dataset_name.split("/")[0].split(":")[0])


def _absolute(directory: str) -> str:
  """Makes a local path absolute; leaves a URL such as gs://... as it is."""
  return directory if "://" in directory else os.path.abspath(directory)


def _check_archive(path: epath.Path, layout_folder: str) -> None:
  """Raises DataError unless `path` is a zip file holding `layout_folder`."""
  try:
    with zipfile.ZipFile(path) as archive:
      names = archive.namelist()
  except (zipfile.BadZipFile, OSError) as error:
    raise DataError(
        f"{path} is not a readable zip archive ({error}). It may be truncated"
        " by an interrupted download: download it again and replace it."
    ) from None
  if not any(layout_folder in name for name in names):
    raise DataError(
        f"{path} does not hold the folder {layout_folder!r} that this dataset's"
        " archive has; is it the right file? Download it again from the"
        " dataset's homepage."
    )


def check_manual_files(
    dataset_name: str, manual_dir: str | None
) -> None:
  """Checks that the archives `dataset_name` is built from are in place.

  Raises:
    DataError: naming the missing or broken files, where to get them and
      the directory searched.
  """
  download = manual_download_for(dataset_name)
  if download is None:
    return
  if manual_dir is None:
    raise DataError(
        f"{dataset_name} is built from files you download yourself; set"
        " --config.data.manual_dir to the directory holding"
        f" {[name for name, _ in download.archives]}."
    )
  directory = epath.Path(_absolute(manual_dir))
  missing = [
      name for name, _ in download.archives if not (directory / name).exists()
  ]
  if missing:
    raise DataError(
        f"{dataset_name} needs {missing}, which are not in {directory}.\n"
        f"Download them from {download.homepage} (registration may be"
        f" required) and place them, still zipped, in {directory}, or point"
        " --config.data.manual_dir=DIR at the directory holding them.\n"
        f"Searched: {[str(directory / name) for name in missing]}."
    )
  for name, layout_folder in download.archives:
    _check_archive(directory / name, layout_folder)


def prepare(data_config: ml_collections.ConfigDict) -> tfds.core.DatasetBuilder:
  """Returns the dataset's builder, building the dataset first if needed.

  Raises:
    DataError: the files a manual dataset is built from are missing or
      broken, or its build failed on a file (the message names it).
  """
  builder = tfds.builder(data_config.name, data_dir=data_config.data_dir)
  if builder.is_prepared():
    return builder
  check_manual_files(data_config.name, data_config.manual_dir)
  download_config = tfds.download.DownloadConfig(
      manual_dir=data_config.manual_dir and _absolute(data_config.manual_dir)
  )
  try:
    builder.download_and_prepare(download_config=download_config)
  except (OSError, ValueError, zipfile.BadZipFile, tf.errors.OpError) as error:
    raise DataError(
        f"Building {data_config.name} into {builder.data_dir} failed: {error}"
    ) from error
  return builder
