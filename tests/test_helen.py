"""Tests for the Helen builder, on small archives in the real layout."""

import io
import zipfile

import numpy as np
from PIL import Image
import pytest
import tensorflow_datasets as tfds

from configs import helen as helen_config
from spg_jax.data import inspect_data
from spg_jax.data.builders import helen

_TOP = "SmithCVPR2013_dataset_resized/"
_HEIGHT, _WIDTH = 16, 20
# Faces per split list, as (list file, number of faces).
_LISTS = (("exemplars.txt", 3), ("tuning.txt", 1), ("testing.txt", 2))
_EYE = 4  # lbl04: the left eye.
_TIE_REGION = (slice(11, 15), slice(15, 19))  # lbl02 = lbl03, brightest.


def _face_names() -> dict[str, list[str]]:
  """Names in Helen's style, `<photo id>_<face number>`, for each list."""
  names, start = {}, 0
  for list_name, count in _LISTS:
    names[list_name] = [f"{100032540 + face}_{face % 3 + 1}"
                        for face in range(start, start + count)]
    start += count
  return names


def _eye_patch(face: int) -> tuple[slice, slice]:
  """A rectangle, different for every face, where lbl04 is brightest."""
  return slice(2 + face, 8 + face), slice(3, 12)


def _png(array: np.ndarray) -> bytes:
  buffer = io.BytesIO()
  Image.fromarray(array).save(buffer, format="PNG")
  return buffer.getvalue()


def _jpeg(face: int) -> bytes:
  rng = np.random.default_rng(face)
  pixels = rng.integers(0, 256, [_HEIGHT, _WIDTH, 3], dtype=np.uint8)
  buffer = io.BytesIO()
  Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
  return buffer.getvalue()


def _label_maps(face: int) -> list[np.ndarray]:
  """11 soft maps: background everywhere but the eye patch and tie region.

  A dim ramp of face skin lies under everything, so each pixel's winner is
  decided by values, not by zeros.
  """
  maps = np.zeros([11, _HEIGHT, _WIDTH], np.uint8)
  maps[0] = 200
  maps[1] = np.linspace(0, 150, _WIDTH, dtype=np.uint8)
  patch = _eye_patch(face)
  maps[0][patch] = 40
  maps[_EYE][patch] = 230
  maps[_EYE][patch[0], patch[1].stop] = 120  # A soft edge, below background.
  maps[0][_TIE_REGION] = 0
  maps[2][_TIE_REGION] = maps[3][_TIE_REGION] = 180
  return list(maps)


def _members(top: str = _TOP) -> dict[str, bytes]:
  """Every file of a small archive laid out as Helen's, by member name."""
  members = {}
  face = 0
  for list_name, names in _face_names().items():
    # Lines as the real lists have them, with varying spaces and blank lines.
    lines = [f"{i + 1}{' ' * (i % 2 + 1)}, {name} " for i, name in
             enumerate(names)]
    members[top + list_name] = ("\n".join(lines) + "\n\n").encode()
    for name in names:
      members[f"{top}images/{name}.jpg"] = _jpeg(face)
      for class_id, class_map in enumerate(_label_maps(face)):
        members[f"{top}labels/{name}/{name}_lbl{class_id:02d}.png"] = (
            _png(class_map))
      face += 1
  return members


def _write_zip(manual_dir, members: dict[str, bytes]):
  manual_dir.mkdir(parents=True, exist_ok=True)
  path = manual_dir / helen.ARCHIVE_NAME
  with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
    for name, data in members.items():
      archive.writestr(name, data)
  return path


def _build(tmp_path, manual_dir):
  builder = tfds.builder("helen", data_dir=str(tmp_path / "tfds"), config=None)
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
      manual_dir=str(manual_dir)))
  return builder


def _examples(builder, split, **kwargs):
  dataset = builder.as_dataset(split=split, shuffle_files=False, **kwargs)
  return {example["image_id"].decode(): example
          for example in tfds.as_numpy(dataset)}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
  """The builder after a build from the small archive, and its members."""
  tmp_path = tmp_path_factory.mktemp("helen")
  members = _members()
  _write_zip(tmp_path / "manual", members)
  return _build(tmp_path, tmp_path / "manual"), members


def test_info():
  assert str(helen.Helen.VERSION) == "1.0.0"
  assert helen.Helen.name == "helen"
  assert helen.ARCHIVE_NAME == "SmithCVPR2013_dataset_resized.zip"
  assert helen.ARCHIVE_NAME in helen.Helen.MANUAL_DOWNLOAD_INSTRUCTIONS
  assert helen.HOMEPAGE in helen.Helen.MANUAL_DOWNLOAD_INSTRUCTIONS
  assert "data/helen" in helen.Helen.MANUAL_DOWNLOAD_INSTRUCTIONS
  assert "--config.data.manual_dir" in helen.Helen.MANUAL_DOWNLOAD_INSTRUCTIONS


def test_splits_and_features(built):
  builder, _ = built
  splits = builder.info.splits
  assert {name: splits[name].num_examples for name in splits} == {
      "train": 3, "validation": 1, "test": 2}
  features = builder.info.features
  assert features["image"].encoding_format == "jpeg"
  assert features["label"].encoding_format == "png"
  assert features["label"].shape == (None, None, 1)
  assert builder.info.metadata["class_names"][_EYE] == "left eye"
  names = _face_names()
  assert sorted(_examples(builder, "train")) == sorted(names["exemplars.txt"])
  assert sorted(_examples(builder, "validation")) == sorted(
      names["tuning.txt"])
  assert sorted(_examples(builder, "test")) == sorted(names["testing.txt"])


def test_label_is_the_brightest_map(built):
  builder, _ = built
  all_names = [name for names in _face_names().values() for name in names]
  for split in ("train", "validation", "test"):
    for name, example in _examples(builder, split).items():
      label = example["label"]
      assert label.shape == (_HEIGHT, _WIDTH, 1) and label.dtype == np.uint8
      expected = np.zeros([_HEIGHT, _WIDTH], np.uint8)
      expected[_eye_patch(all_names.index(name))] = _EYE
      expected[_TIE_REGION] = 2  # The tie between lbl02 and lbl03.
      np.testing.assert_array_equal(label[..., 0], expected)


def test_jpeg_bytes_pass_through_unchanged(built):
  builder, members = built
  raw = _examples(builder, "train",
                  decoders={"image": tfds.decode.SkipDecoding()})
  decoded = _examples(builder, "train")
  for name, example in raw.items():
    jpeg = members[f"{_TOP}images/{name}.jpg"]
    assert example["image"] == jpeg
    with Image.open(io.BytesIO(jpeg)) as image:
      expected = np.asarray(image, np.int32)
    # TFDS decodes with TF's fast integer IDCT and PIL with the accurate one,
    # so pixels may differ by a few levels (5 at most on these noise images).
    image = decoded[name]["image"]
    assert image.shape == (_HEIGHT, _WIDTH, 3)
    assert np.abs(image - expected).max() <= 6


def test_other_top_folder_name(tmp_path):
  members = {"__MACOSX/helen_copy/._exemplars.txt": b"\0"}
  members.update(_members("helen_copy/"))
  _write_zip(tmp_path / "manual", members)
  builder = _build(tmp_path, tmp_path / "manual")
  assert builder.info.splits["train"].num_examples == 3


def test_missing_archive_names_the_path_searched(tmp_path):
  manual_dir = tmp_path / "manual"
  manual_dir.mkdir()
  (manual_dir / "README.txt").write_text("Not the archive.")
  with pytest.raises(FileNotFoundError) as error:
    _build(tmp_path, manual_dir)
  message = str(error.value)
  assert str(manual_dir / helen.ARCHIVE_NAME) in message
  assert helen.HOMEPAGE in message


def test_missing_manual_dir_names_it(tmp_path):
  manual_dir = tmp_path / "nowhere"
  with pytest.raises(FileNotFoundError) as error:
    _build(tmp_path, manual_dir)
  message = str(error.value)
  assert str(manual_dir) in message and helen.ARCHIVE_NAME in message
  assert helen.HOMEPAGE in message


def test_truncated_archive(tmp_path):
  path = _write_zip(tmp_path / "manual", _members())
  path.write_bytes(path.read_bytes()[:5000])
  with pytest.raises(ValueError, match="not a valid zip") as error:
    _build(tmp_path, tmp_path / "manual")
  assert str(path) in str(error.value)


def test_archive_without_split_lists(tmp_path):
  members = {name: data for name, data in _members().items()
             if not name.endswith(".txt")}
  path = _write_zip(tmp_path / "manual", members)
  with pytest.raises(ValueError, match="holds no exemplars.txt") as error:
    _build(tmp_path, tmp_path / "manual")
  assert str(path) in str(error.value)


def _first_test_face() -> str:
  return _face_names()["testing.txt"][0]


@pytest.mark.parametrize("kind", ["label", "image", "split list"])
def test_missing_member_is_named(tmp_path, kind):
  name = _first_test_face()
  member = {
      "label": f"{_TOP}labels/{name}/{name}_lbl07.png",
      "image": f"{_TOP}images/{name}.jpg",
      "split list": f"{_TOP}tuning.txt",
  }[kind]
  members = _members()
  del members[member]
  path = _write_zip(tmp_path / "manual", members)
  with pytest.raises(ValueError, match=f"lacks {member};") as error:
    _build(tmp_path, tmp_path / "manual")
  assert str(path) in str(error.value)
  assert "download" in str(error.value)


def test_undecodable_image_is_named(tmp_path):
  name = _first_test_face()
  member = f"{_TOP}images/{name}.jpg"
  members = _members()
  members[member] = members[member][:40]
  path = _write_zip(tmp_path / "manual", members)
  with pytest.raises(ValueError, match="is not a decodable image") as error:
    _build(tmp_path, tmp_path / "manual")
  assert f"{path}: {member}" in str(error.value)


def test_label_size_mismatch_is_named(tmp_path):
  name = _first_test_face()
  member = f"{_TOP}labels/{name}/{name}_lbl03.png"
  members = _members()
  members[member] = _png(np.zeros([_HEIGHT, _WIDTH + 1], np.uint8))
  _write_zip(tmp_path / "manual", members)
  with pytest.raises(ValueError) as error:
    _build(tmp_path, tmp_path / "manual")
  assert (f"label map {member} is {_WIDTH + 1}x{_HEIGHT} pixels but its image"
          f" {_TOP}images/{name}.jpg is {_WIDTH}x{_HEIGHT}"
          in str(error.value))


def test_helen_config_reads_the_built_faces(built, tmp_path):
  builder, _ = built
  config = helen_config.get_config("tiny")
  config.data.data_dir = str(builder.data_dir).split("/helen/")[0]
  config.data.image_size = 16
  config.eval.batch_size = 2
  frequencies = inspect_data.inspect(config, "eval", 2, str(tmp_path))
  # The test split's faces, squashed from 20x16 to 16x16, keep their eyes.
  assert frequencies["left eye"]["overall"] > 0.1
  assert frequencies["background"]["overall"] > 0.3
  assert sum(f["overall"] for f in frequencies.values()) == pytest.approx(1.0)
