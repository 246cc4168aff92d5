"""TFDS builder for Helen face parsing, read from its manual download.

Importing this module registers `helen` with TFDS:

  import tensorflow_datasets as tfds
  import spg_jax.data.builders.helen  # Registers the builder.

  builder = tfds.builder('helen')
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
      manual_dir='data/helen'))

The builder never downloads: it reads `ARCHIVE_NAME`, fetched by hand from
`HOMEPAGE`, straight from the zip. Each face there has a JPEG and 11 greyscale
maps `<name>_lbl00.png` ... `<name>_lbl10.png`, one per class of
`classes.HELEN`, whose values (0..255, soft at class edges) say how much a
pixel belongs to that class. The stored label is the class id whose map is
brightest at each pixel, the lower id on a tie, so every pixel gets exactly
one of the 11 classes.
"""

from collections.abc import Iterator
import inspect
import io
import zipfile
import zlib

from etils import epath
import numpy as np
from PIL import Image
import tensorflow_datasets as tfds

from spg_jax.data import classes

ARCHIVE_NAME = "SmithCVPR2013_dataset_resized.zip"
HOMEPAGE = "http://www.cs.wisc.edu/~lizhang/projects/face-parsing/"

# Each split's list of face names, inside the archive's top folder.
_SPLIT_LISTS = {
    "train": "exemplars.txt",
    "validation": "tuning.txt",
    "test": "testing.txt",
}
_NUM_CLASSES = classes.HELEN.num_classes

_CITATION = """\
@inproceedings{smith2013exemplar,
  title = {Exemplar-Based Face Parsing},
  author = {Smith, Brandon M. and Zhang, Li and Brandt, Jonathan and
            Lin, Zhe and Yang, Jianchao},
  booktitle = {IEEE Conference on Computer Vision and Pattern Recognition
               (CVPR)},
  year = {2013},
}
@inproceedings{le2012interactive,
  title = {Interactive Facial Feature Localization},
  author = {Le, Vuong and Brandt, Jonathan and Lin, Zhe and Bourdev, Lubomir
            and Huang, Thomas S.},
  booktitle = {European Conference on Computer Vision (ECCV)},
  year = {2012},
}"""

_REDOWNLOAD = (
    f"download {ARCHIVE_NAME} again from {HOMEPAGE} and replace the file"
)


class Helen(tfds.core.GeneratorBasedBuilder):
  """Helen faces with per-pixel labels of 11 facial parts.

  Photographs of faces, in the archive's resized copies, each labelled per
  pixel as background, face skin, left and right eyebrow, left and right eye,
  nose, upper lip, inner mouth, lower lip or hair (Smith et al.'s parsing
  labels for the Helen faces of Le et al.). Splits follow the
  archive's lists: train = exemplars.txt (2,000 faces), validation =
  tuning.txt (230), test = testing.txt (100); SPG-Net trains on train and
  reports test.
  """

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release."}
  MANUAL_DOWNLOAD_INSTRUCTIONS = f"""\
  Download {ARCHIVE_NAME}
  (the resized images with their label maps) from {HOMEPAGE}
  and place it, still zipped, in the manual directory: `data/helen` in the
  repository by default, or the directory `--config.data.manual_dir` names.
  """

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self,
        description=inspect.cleandoc(Helen.__doc__),
        features=tfds.features.FeaturesDict({
            "image": tfds.features.Image(
                shape=(None, None, 3), encoding_format="jpeg"
            ),
            "label": tfds.features.Image(
                shape=(None, None, 1), encoding_format="png"
            ),
            "image_id": tfds.features.Text(),
        }),
        supervised_keys=("image", "label"),
        homepage=HOMEPAGE,
        citation=_CITATION,
        metadata=tfds.core.MetadataDict(
            class_names=list(classes.HELEN.names)
        ),
    )

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    """Checks the archive and reads the split lists, before any example."""
    path = _archive_path(dl_manager)
    try:
      archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
      raise ValueError(
          f"{path} is not a valid zip archive ({error}); it may be truncated or"
          f" corrupt: {_REDOWNLOAD}."
      ) from None
    with archive:
      top = _top_folder(archive, path)
      return {
          split: self._generate_examples(
              path, top, _read_names(archive, path, top + list_name)
          )
          for split, list_name in _SPLIT_LISTS.items()
      }

  def _generate_examples(
      self, path: epath.Path, top: str, names: list[str]
  ) -> Iterator[tuple[str, dict[str, object]]]:
    """Yields (name, example) for each face name, in the list's order."""
    with zipfile.ZipFile(path) as archive:
      for name in names:
        image_member = f"{top}images/{name}.jpg"
        jpeg = _read(archive, path, image_member)
        height, width = _decode(jpeg, path, image_member, "RGB").shape[:2]
        maps = []
        for class_id in range(_NUM_CLASSES):
          member = f"{top}labels/{name}/{name}_lbl{class_id:02d}.png"
          class_map = _decode(_read(archive, path, member), path, member, "L")
          if class_map.shape != (height, width):
            raise ValueError(
                f"{path}: label map {member} is {class_map.shape[1]}x"
                f"{class_map.shape[0]} pixels but its image {image_member} is"
                f" {width}x{height}; the archive is not the one the dataset"
                f" publishes: {_REDOWNLOAD}."
            )
          maps.append(class_map)
        # argmax returns the first maximum: ties go to the lower class id.
        label = np.argmax(np.stack(maps), axis=0).astype(np.uint8)
        yield name, {"image": jpeg, "label": label[..., None], "image_id": name}


def _archive_path(dl_manager: tfds.download.DownloadManager) -> epath.Path:
  """Returns the archive's path in the manual directory, which must hold it."""
  try:
    manual_dir = dl_manager.manual_dir
  except AssertionError as error:  # TFDS: the directory is missing or empty.
    raise FileNotFoundError(f"{ARCHIVE_NAME} not found. {error}") from None
  path = manual_dir / ARCHIVE_NAME
  if not path.exists():
    raise FileNotFoundError(
        f"{ARCHIVE_NAME} not found: searched {path}.\n"
        f"{inspect.cleandoc(Helen.MANUAL_DOWNLOAD_INSTRUCTIONS)}"
    )
  return path


def _top_folder(archive: zipfile.ZipFile, path: epath.Path) -> str:
  """Returns the folder (with its trailing '/') that holds exemplars.txt."""
  list_name = _SPLIT_LISTS["train"]
  for member in archive.namelist():
    if member.rpartition("/")[2] == list_name:
      return member[: -len(list_name)]
  raise ValueError(
      f"{path} holds no {list_name}, so it is not the Helen archive"
      f" {ARCHIVE_NAME}: {_REDOWNLOAD}."
  )


def _read(archive: zipfile.ZipFile, path: epath.Path, member: str) -> bytes:
  """Returns a member's bytes; a missing or damaged one is a ValueError."""
  try:
    return archive.read(member)
  except KeyError:
    raise ValueError(
        f"{path} lacks {member}; the archive is incomplete or not the one"
        f" the dataset publishes: {_REDOWNLOAD}."
    ) from None
  except (zipfile.BadZipFile, zlib.error, EOFError) as error:
    raise ValueError(
        f"{path}: {member} is corrupt ({error}): {_REDOWNLOAD}."
    ) from None


def _read_names(
    archive: zipfile.ZipFile, path: epath.Path, member: str
) -> list[str]:
  """Returns the face names of a split list of 'index , name' lines."""
  lines = _read(archive, path, member).decode("utf-8").splitlines()
  return [line.rpartition(",")[2].strip() for line in lines if line.strip()]


def _decode(
    data: bytes, path: epath.Path, member: str, mode: str
) -> np.ndarray:
  """Decodes an image file's bytes to a uint8 array of PIL `mode`."""
  try:
    with Image.open(io.BytesIO(data)) as image:
      return np.asarray(image.convert(mode))
  except (OSError, ValueError) as error:  # PIL: unknown, broken or truncated.
    raise ValueError(
        f"{path}: {member} is not a decodable image ({error}): {_REDOWNLOAD}."
    ) from None
