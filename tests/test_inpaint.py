"""Tests of inference: the Python API and the command line, on a tiny run."""

import os
import pathlib
import subprocess
import sys

import jax
import numpy as np
import orbax.checkpoint as ocp
from PIL import Image
import pytest

from spg_jax.inference import image_files
from spg_jax.inference import inpaint
from spg_jax.training import schedules

_REPO = pathlib.Path(__file__).resolve().parents[1]
_SAMPLES = _REPO / "data" / "samples"


@pytest.fixture(scope="module")
def inpainter(tiny_workdir):
  return inpaint.Inpainter.from_workdir(tiny_workdir)


def _inputs(height, width, seed=0):
  rng = np.random.default_rng(seed)
  image = rng.integers(0, 256, (1, height, width, 3), dtype=np.uint8)
  hole = np.zeros((1, height, width), bool)
  hole[0, height // 4 : height // 2, width // 3 : 2 * width // 3] = True
  known = rng.integers(0, 8, (1, height, width)).astype(np.int32)
  return image, hole, known


@pytest.mark.parametrize("height,width", [(97, 131), (300, 200), (32, 32)])
def test_any_size_keeps_known_pixels_and_labels_exactly(inpainter, height, width):
  image, hole, known = _inputs(height, width)
  labels, output = inpainter.complete(image, hole, known)
  assert output.shape == image.shape and output.dtype == np.uint8
  np.testing.assert_array_equal(output[~hole], image[~hole])
  np.testing.assert_array_equal(labels[~hole], known[~hole])
  assert np.all((labels >= 0) & (labels < 8))
  # The hole is filled by the network, not left as it was.
  assert np.mean(output[hole] != image[hole]) > 0.5


@pytest.mark.parametrize("height,width", [(30, 45), (32, 48)])
def test_the_hole_content_is_never_read(inpainter, height, width):
  image, _, known = _inputs(height, width)
  hole = np.zeros((1, height, width), bool)
  hole[0, -9:, -13:] = True  # At the corner the padding mirrors.
  noise = np.random.default_rng(5).integers(0, 256, image.shape, np.uint8)
  other_image = np.where(hole[..., None], noise, image)
  other_known = np.where(hole, (known + 1) % 8, known)
  first = inpainter.complete(image, hole, known)
  second = inpainter.complete(other_image, hole, other_known)
  np.testing.assert_array_equal(first[0], second[0])
  np.testing.assert_array_equal(first[1][hole], second[1][hole])


def test_without_labels_the_segmenter_labels_the_known_region(inpainter):
  """Given no known labels, the run's segmenter labels the known region
  from the corrupted image (its hole's content unseen) and SP-Net reads
  those; labels given by the user win."""
  assert inpainter.has_segmenter
  height, width = 30, 45  # padded to the networks' multiple, cropped back
  image, hole, known = _inputs(height, width)
  segmented = inpainter.label_known_region(image, hole)
  noise = np.random.default_rng(6).integers(0, 256, image.shape, np.uint8)
  np.testing.assert_array_equal(
      segmented,
      inpainter.label_known_region(np.where(hole[..., None], noise, image), hole),
  )
  assert segmented.shape == hole.shape
  # Untrained, yet not one class: a constant map would hide a mix-up.
  assert len(np.unique(segmented[~hole])) > 1
  labels, output = inpainter.complete(image, hole)
  np.testing.assert_array_equal(labels[~hole], segmented[~hole])
  expected_labels, expected_output = inpainter.complete(image, hole, segmented)
  np.testing.assert_array_equal(labels, expected_labels)
  np.testing.assert_array_equal(output, expected_output)
  given, _ = inpainter.complete(image, hole, known)
  np.testing.assert_array_equal(given[~hole], known[~hole])


def test_too_small_and_fully_masked_images_are_refused(inpainter):
  image, hole, _ = _inputs(1, 1)
  with pytest.raises(image_files.InputError, match="1x1 pixels; this model"):
    inpainter.complete(image, hole)
  image, hole, _ = _inputs(16, 16)
  with pytest.raises(image_files.InputError, match="covers the whole image"):
    inpainter.complete(image, np.ones_like(hole))


def test_an_empty_mask_returns_the_image_unchanged(inpainter):
  image, hole, known = _inputs(40, 24)
  labels, output = inpainter.complete(image, np.zeros_like(hole), known)
  np.testing.assert_array_equal(output, image)
  np.testing.assert_array_equal(labels, known)


def test_edited_labels_change_the_hole_and_nothing_else(inpainter):
  image, hole, known = _inputs(48, 64)
  labels = inpainter.predict_labels(image, hole, known)
  edited = np.where(hole, (labels + 3) % 8, labels)
  first = inpainter.render(image, hole, labels)
  second = inpainter.render(image, hole, edited)
  np.testing.assert_array_equal(first[~hole], second[~hole])
  assert np.any(first[hole] != second[hole])


def test_each_padded_shape_compiles_once(inpainter):
  before = inpainter._render._cache_size()  # pylint: disable=protected-access
  for _ in range(2):
    inpainter.complete(*_inputs(50, 70))
  # 50x70 and 51x69 pad to the same 52x72 bucket.
  inpainter.complete(*_inputs(51, 69))
  assert inpainter._render._cache_size() == before + 1  # pylint: disable=protected-access


def test_resize_fit_keeps_known_pixels_exactly(inpainter):
  image, hole, known = _inputs(90, 150)
  labels, output = inpaint.inpaint_file(
      inpainter, image[0], hole[0], known[0], None, "resize"
  )
  np.testing.assert_array_equal(output[~hole[0]], image[0][~hole[0]])
  np.testing.assert_array_equal(labels[~hole[0]], known[0][~hole[0]])
  assert np.mean(output[hole[0]] != image[0][hole[0]]) > 0.5
  # Given labels guide the render in resize mode too.
  edited = np.where(hole[0], (labels + 4) % 8, labels)
  _, edited_output = inpaint.inpaint_file(
      inpainter, image[0], hole[0], known[0], edited, "resize"
  )
  np.testing.assert_array_equal(edited_output[~hole[0]], image[0][~hole[0]])
  assert np.any(edited_output[hole[0]] != output[hole[0]])


# Reading the checkpoint in the shardings it was saved with is the point:
# they are the 4 devices' that this process has too.
@pytest.mark.xdist_group("trained_run")
@pytest.mark.filterwarnings("ignore:Sharding info not provided when restoring")
def test_a_data_parallel_runs_checkpoint_loads_onto_one_device(trained_run):
  """The latest checkpoint of a run trained on the 4 devices, whose arrays
  were replicated over the mesh, loads whole onto one device."""
  checkpoints = trained_run.workdir / "checkpoints"
  latest = max(int(p.name) for p in checkpoints.iterdir() if p.name.isdigit())
  # Read with plain Orbax, not spg_jax's restore.
  saved = ocp.PyTreeCheckpointer().restore(checkpoints / str(latest) / "state")
  inpainter = inpaint.Inpainter.from_workdir(trained_run.workdir)
  assert inpainter.step == latest == schedules.total_steps(
      trained_run.config.schedule
  )
  for name in ("sp", "sg"):
    expected = jax.tree_util.tree_leaves_with_path(saved[name]["params"])
    loaded = jax.tree_util.tree_leaves_with_path(inpainter.params[name])
    keys = [jax.tree_util.keystr(path) for path, _ in loaded]
    assert keys == [jax.tree_util.keystr(path) for path, _ in expected]
    for key, (_, leaf), (_, saved_leaf) in zip(keys, loaded, expected):
      assert len(saved_leaf.sharding.device_set) == 4, key
      assert len(leaf.sharding.device_set) == 1, key
      np.testing.assert_array_equal(leaf, saved_leaf, err_msg=key)
  # A batch of two 40x56 images, each with its own hole.
  image, _, known = _inputs(40, 56, seed=3)
  image, known = np.repeat(image, 2, axis=0), np.repeat(known, 2, axis=0)
  image[1] = 255 - image[1]
  hole = np.zeros((2, 40, 56), bool)
  hole[0, 4:20, 6:30] = True
  hole[1, 22:38, 30:52] = True
  labels, output = inpainter.complete(image, hole, known)
  np.testing.assert_array_equal(output[~hole], image[~hole])
  np.testing.assert_array_equal(labels[~hole], known[~hole])
  assert np.mean(output[hole] != image[hole]) > 0.5


@pytest.mark.xdist_group("trained_run")
@pytest.mark.filterwarnings("ignore:Sharding info not provided when restoring")
def test_an_earlier_step_loads_its_own_weights_and_a_missing_one_is_named(
    trained_run):
  """`step` loads that checkpoint, not the latest; a step never saved is
  refused with the steps that were."""
  saved_steps = sorted(int(p.name) for p in
                       (trained_run.workdir / "checkpoints").iterdir()
                       if p.name.isdigit())
  assert len(saved_steps) >= 2, saved_steps
  earlier = saved_steps[0]
  latest = inpaint.Inpainter.from_workdir(trained_run.workdir)
  inpainter = inpaint.Inpainter.from_workdir(trained_run.workdir, earlier)
  assert inpainter.step == earlier
  saved = ocp.PyTreeCheckpointer().restore(
      trained_run.workdir / "checkpoints" / str(earlier) / "state")
  for leaf, saved_leaf in zip(jax.tree.leaves(inpainter.params["sg"]),
                              jax.tree.leaves(saved["sg"]["params"])):
    np.testing.assert_array_equal(leaf, saved_leaf)
  assert any(np.any(a != b) for a, b in zip(
      jax.tree.leaves(inpainter.params["sg"]),
      jax.tree.leaves(latest.params["sg"])))
  with pytest.raises(image_files.InputError,
                     match=f"No checkpoint of step 7 .*{saved_steps}"):
    inpaint.Inpainter.from_workdir(trained_run.workdir, 7)


def _cli(*args):
  return subprocess.run(
      [sys.executable, "-m", "spg_jax.inference.inpaint", *args],
      cwd=_REPO,
      capture_output=True,
      text=True,
      env={**os.environ, "XLA_FLAGS": ""},
      check=False,
  )


def test_command_line_predicts_then_renders_edited_labels(tiny_workdir, tmp_path):
  result = _cli(
      f"--workdir={tiny_workdir}",
      f"--image={_SAMPLES / 'street.png'}",
      f"--mask={_SAMPLES / 'street_mask.png'}",
      f"--known_labels={_SAMPLES / 'street_labels.png'}",
      f"--out={tmp_path / 'out.png'}",
      f"--labels_out={tmp_path / 'labels.png'}",
  )
  assert result.returncode == 0, result.stderr[-3000:]
  image = np.asarray(Image.open(_SAMPLES / "street.png"))
  hole = np.asarray(Image.open(_SAMPLES / "street_mask.png")) > 0
  output = np.asarray(Image.open(tmp_path / "out.png"))
  np.testing.assert_array_equal(output[~hole], image[~hole])
  labels = np.asarray(Image.open(tmp_path / "labels.png"))
  known = np.asarray(Image.open(_SAMPLES / "street_labels.png"))
  np.testing.assert_array_equal(labels[~hole], known[~hole])
  assert (tmp_path / "labels_preview.png").exists()

  # The user paints the hole 'vegetation' (4) in the index PNG and re-renders.
  edited = Image.open(tmp_path / "labels.png")
  edited_ids = np.where(hole, 4, labels).astype(np.uint8)
  edited_image = Image.fromarray(edited_ids, "P")
  edited_image.putpalette(edited.getpalette())
  edited_image.save(tmp_path / "edited.png")
  result = _cli(
      f"--workdir={tiny_workdir}",
      f"--image={_SAMPLES / 'street.png'}",
      f"--mask={_SAMPLES / 'street_mask.png'}",
      f"--labels={tmp_path / 'edited.png'}",
      f"--out={tmp_path / 'out_edited.png'}",
  )
  assert result.returncode == 0, result.stderr[-3000:]
  edited_output = np.asarray(Image.open(tmp_path / "out_edited.png"))
  np.testing.assert_array_equal(edited_output[~hole], image[~hole])
  assert np.any(edited_output[hole] != output[hole])


def test_command_line_folder_mode_reports_bad_files_and_does_the_rest(
    tiny_workdir, tmp_path
):
  images, masks, out = (tmp_path / name for name in ("images", "masks", "out"))
  for folder in (images, masks):
    folder.mkdir()
  rng = np.random.default_rng(1)
  for name, size in (("a", (40, 56)), ("b", (33, 47)), ("c", (40, 56))):
    Image.fromarray(rng.integers(0, 256, size + (3,), dtype=np.uint8)).save(
        images / f"{name}.jpg" if name == "b" else images / f"{name}.png"
    )
    mask = np.zeros(size, np.uint8)
    mask[5:20, 10:30] = 255
    if name == "c":
      mask = mask[:-1]  # Wrong size.
    Image.fromarray(mask).save(masks / f"{name}.png")
  result = _cli(f"--workdir={tiny_workdir}", f"--image_dir={images}",
                f"--mask_dir={masks}", f"--out_dir={out}")
  assert result.returncode == 1
  assert "c.png is 56x39 pixels but the image is 56x40" in result.stderr
  assert sorted(path.name for path in out.iterdir()) == ["a.png", "b.png"]
  assert "image/s" in result.stderr  # The progress bar.


def test_command_line_names_a_bad_workdir(tmp_path):
  result = _cli(f"--workdir={tmp_path}", f"--image={_SAMPLES / 'street.png'}",
                f"--mask={_SAMPLES / 'street_mask.png'}",
                f"--out={tmp_path / 'o.png'}")
  assert result.returncode == 1
  assert f"{tmp_path / 'config.json'} does not exist" in result.stderr
  assert "Traceback" not in result.stderr


def test_help_says_where_known_labels_come_from_without_them():
  result = _cli("--help")  # absl prints the help and exits with status 1.
  help_text = " ".join(result.stdout.split())
  assert "Without it the run's segmenter labels it" in help_text
  assert "a run without one counts it as class 0" in help_text


def test_label_flags_are_refused_in_folder_mode(tmp_path):
  result = _cli(f"--workdir={tmp_path}", f"--image_dir={tmp_path}",
                f"--mask_dir={tmp_path}", f"--out_dir={tmp_path / 'o'}",
                f"--labels={tmp_path / 'l.png'}")
  assert result.returncode == 1
  assert "--labels apply to one image" in result.stderr


def test_folder_jobs_refuse_clashing_outputs(tmp_path):
  for name in ("a.png", "a.jpg"):
    Image.fromarray(np.zeros([4, 4, 3], np.uint8)).save(tmp_path / name)
  with pytest.raises(image_files.InputError, match=r"several images named \['a'\]"):
    inpaint.folder_jobs(tmp_path, tmp_path, tmp_path / "out")
  (tmp_path / "a.jpg").unlink()
  with pytest.raises(image_files.InputError, match="would overwrite the inputs"):
    inpaint.folder_jobs(tmp_path, tmp_path, tmp_path)
