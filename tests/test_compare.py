"""Tests of the comparison command: its outputs, exact known pixels, the
shared hole set and its errors, on untrained tiny networks (the tests check
invariants and outputs, not quality)."""

import csv
import json

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image
import pytest

from configs import synthetic
from spg_jax.evaluation import baselines
from spg_jax.evaluation import compare
from spg_jax.evaluation import methods
from spg_jax.evaluation import perceptual_scores
from spg_jax.evaluation import report
from spg_jax.models import spg
from spg_jax.pretrained import converted
from spg_jax.pretrained import inception
from spg_jax.pretrained import lpips
from spg_jax.runtime import atomic_files
from spg_jax.training import checkpoints
from spg_jax.training import steps

import torch_references

_NUM_IMAGES = 4
_IMAGE_METRICS = ("l1", "l2", "psnr", "ssim", "l1_hole", "l2_hole",
                  "psnr_hole", "ssim_hole", "l1_boundary")
_OUTPUTS = ("results.json", "results.md", "results.png", "grid.png",
            "edits.png", "per_image.csv")


@pytest.fixture(scope="module")
def noseg_workdir(tmp_path_factory):
  """A tiny run trained without labels (the ablation): config.json and a
  checkpoint, as tiny_workdir but with parameters drawn from NumPy. The
  networks' own initialisers run op by op, each op compiled: half a minute
  on 2 cores, for weights that only need to be some weights."""
  config = synthetic.get_config("tiny")
  config.data.name = "synthetic_scenes/s32"
  config.model.guidance = "none"
  config.schedule.seg.steps = 0  # Its segmenter would go unused.
  config.known_labels = "ground_truth"
  workdir = tmp_path_factory.mktemp("tiny_noseg_run")
  atomic_files.write_text(workdir / "config.json", config.to_json_best_effort())
  networks = spg.Networks.from_config(config)
  shapes = jax.eval_shape(
      lambda: steps.create_train_state(config, networks, jax.random.key(1))
  )
  rng = np.random.default_rng(1)

  def draw(leaf):
    if np.issubdtype(leaf.dtype, np.floating):
      return jnp.asarray(rng.normal(0.0, 0.1, leaf.shape), leaf.dtype)
    return jnp.zeros(leaf.shape, leaf.dtype)

  manager = checkpoints.make_manager(workdir, config)
  checkpoints.save(manager, 3, jax.tree.map(draw, shapes), "joint", config)
  manager.wait_until_finished()
  return workdir


def _main(*args: str) -> report.Comparison:
  """Runs the command in this process; returns what it wrote."""
  flag_values = flags.FlagValues()
  # pylint: disable-next=protected-access
  holders = compare._define_flags(flag_values)
  argv = flag_values(["compare", *args])
  written = []
  write = report.write

  def record_and_write(out, comparison):
    written.append(comparison)
    write(out, comparison)

  with pytest.MonkeyPatch.context() as patch:
    patch.setattr(report, "write", record_and_write)
    compare.main(argv, holders)
  return written[0]


def _run_args(workdir, data_dir, out, *more):
  return (f"--workdir={workdir}", f"--data_dir={data_dir}",
          f"--num_images={_NUM_IMAGES}", f"--out={out}", *more)


@pytest.fixture(scope="module")
def first(tiny_workdir, noseg_workdir, scenes_data_dir, tmp_path_factory):
  """Every method, sg_noseg from its run; (out folder, comparison)."""
  out = tmp_path_factory.mktemp("compare_first")
  comparison = _main(*_run_args(
      tiny_workdir, scenes_data_dir, out,
      f"--compare_workdir=sg_noseg={noseg_workdir}",
  ))
  return out, comparison


def test_writes_every_output_with_every_method_and_metric(first):
  out, comparison = first
  for name in _OUTPUTS:
    assert (out / name).stat().st_size > 0, name
  results = json.loads((out / "results.json").read_text())
  available = [name for name in methods.METHODS
               if name in methods.NETWORK_METHODS
               or baselines.unavailable_reason(name) is None]
  assert list(results["settings"]["methods"]) == available
  assert set(results["methods"]) == set(available)
  for name, scores in results["methods"].items():
    expected = set(_IMAGE_METRICS) | {"fidelity_miou_hole"}
    if name in ("spg", "spg_gt_known"):
      expected |= {"miou_hole", "pixel_accuracy_hole"}
    assert set(scores) == expected, name
  assert set(results["segmenter"]) == {
      "miou_known", "pixel_accuracy_known", "miou_hole_real",
      "pixel_accuracy_hole_real"}
  assert len(results["edit_response"]) == compare.EDIT_CLASSES
  # sg_gt renders from the true labels, so its guide is the truth.
  by_name = {result.name: result for result in comparison.results}
  np.testing.assert_array_equal(by_name["sg_gt"].guide, comparison.labels)
  # The reported hole L1 is the mean over images of each hole's mean error.
  meanfill = by_name["meanfill"]
  error = np.abs(meanfill.outputs.astype(float) - comparison.images) / 255
  per_image = [error[i][comparison.holes[i]].mean()
               for i in range(_NUM_IMAGES)]
  np.testing.assert_allclose(results["methods"]["meanfill"]["l1_hole"],
                             np.mean(per_image), rtol=1e-5)
  markdown = (out / "results.md").read_text()
  assert "| method | L1 | L2 | PSNR |" in markdown
  assert "**" in markdown and "## Edit response" in markdown
  with open(out / "per_image.csv", newline="") as file:
    rows = list(csv.DictReader(file))
  assert len(rows) == _NUM_IMAGES * len(available)
  np.testing.assert_allclose(
      [float(row["l1_hole"]) for row in rows if row["method"] == "meanfill"],
      per_image, rtol=1e-5)
  # The input, each method and the real image, for each example.
  width, height = Image.open(out / "grid.png").size
  assert width / height == pytest.approx(
      (2 + len(available)) / min(report.GRID_ROWS, _NUM_IMAGES), rel=0.2)


def test_every_method_keeps_known_pixels_exact(first):
  _, comparison = first
  holes = comparison.holes
  assert len({hole.tobytes() for hole in holes}) == _NUM_IMAGES
  for result in comparison.results:
    assert result.outputs.dtype == np.uint8, result.name
    np.testing.assert_array_equal(
        result.outputs[~holes], comparison.images[~holes], err_msg=result.name
    )
    assert np.any(result.outputs[holes] != comparison.images[holes])


def test_reuses_the_hole_set_and_reports_methods_left_out(
    first, tiny_workdir, scenes_data_dir, tmp_path, monkeypatch
):
  first_out, first_comparison = first
  holes_dir = first_out / "holes"
  manifest = (holes_dir / "manifest.json").read_bytes()
  real_reason = baselines.unavailable_reason
  monkeypatch.setattr(
      baselines, "unavailable_reason",
      lambda name: "telea: no cv2 here" if name == "telea"
      else real_reason(name))
  comparison = _main(*_run_args(
      tiny_workdir, scenes_data_dir, tmp_path, f"--holes_dir={holes_dir}",
      "--methods=spg,meanfill,sg_noseg,telea", "--edit_classes=0",
  ))
  assert (holes_dir / "manifest.json").read_bytes() == manifest
  assert not (tmp_path / "holes").exists()
  np.testing.assert_array_equal(comparison.holes, first_comparison.holes)
  first_results = {result.name: result for result in first_comparison.results}
  for result in comparison.results:
    assert result.metrics == first_results[result.name].metrics, result.name
  results = json.loads((tmp_path / "results.json").read_text())
  assert set(results["methods"]) == {"spg", "meanfill"}
  assert results["left_out"]["telea"] == "telea: no cv2 here"
  assert "--compare_workdir=sg_noseg=WORKDIR" in results["left_out"]["sg_noseg"]
  assert results["not_measured"]["edit_response"] == "--edit_classes=0"
  # The session's weights cache is empty: no LPIPS, no FID, and why.
  assert "Make them with `spg-weights --names=lpips`" in (
      results["not_measured"]["lpips"])
  assert "Make them with `spg-weights --names=inception_fid`" in (
      results["not_measured"]["fid"])
  assert "lpips" not in results["methods"]["spg"]
  markdown = (tmp_path / "results.md").read_text()
  assert "- telea: telea: no cv2 here" in markdown
  assert not (tmp_path / "edits.png").exists()

  with pytest.raises(app.UsageError, match=r"seed \(stored 0, asked 1\)"):
    _main(*_run_args(tiny_workdir, scenes_data_dir, tmp_path / "other",
                     f"--holes_dir={holes_dir}", "--hole_seed=1"))


@pytest.fixture(scope="module")
def perceptual_weights_dir(seeded_weights_dir, tmp_path_factory):
  """A weights cache with the seeded LPIPS and a seeded FID Inception,
  converted by the real converters."""
  cache = tmp_path_factory.mktemp("perceptual_weights")
  (cache / "lpips.msgpack").write_bytes(
      (seeded_weights_dir / "lpips.msgpack").read_bytes())
  state = torch_references.random_weights(inception.torch_shapes(), 3)
  converted.save("inception_fid",
                 inception.params_from_torch(state, "seeded"), cache)
  return cache


def test_lpips_and_fid_are_scored_when_their_weights_are_there(
    first, tiny_workdir, scenes_data_dir, tmp_path, monkeypatch,
    perceptual_weights_dir,
):
  first_out, _ = first
  monkeypatch.setenv("SPG_JAX_WEIGHTS", str(perceptual_weights_dir))
  comparison = _main(*_run_args(
      tiny_workdir, scenes_data_dir, tmp_path,
      f"--holes_dir={first_out / 'holes'}", "--methods=meanfill,spg",
      "--edit_classes=0"))
  results = json.loads((tmp_path / "results.json").read_text())
  assert "lpips" not in results["not_measured"]
  assert "fid" not in results["not_measured"]
  lpips_params = converted.load("lpips")
  for result in comparison.results:
    expected = lpips.LPIPS().apply(
        {"params": lpips_params},
        comparison.images.astype(np.float32) / 127.5 - 1,
        result.outputs.astype(np.float32) / 127.5 - 1)
    np.testing.assert_allclose(result.per_image["lpips"], expected,
                               rtol=1e-4, atol=1e-6)
    assert results["methods"][result.name]["lpips"] == pytest.approx(
        float(np.mean(expected)), rel=1e-4)
    assert results["methods"][result.name]["fid"] > 0
  markdown = (tmp_path / "results.md").read_text()
  assert "| LPIPS | FID |" in markdown
  assert (f"between all {_NUM_IMAGES} fills and their real images,"
          " unreliable at this size") in markdown
  scorer = perceptual_scores.PerceptualScorer.from_config(
      synthetic.get_config().eval)
  batched = lambda function, *arrays: compare._in_batches(  # pylint: disable=protected-access
      function, _NUM_IMAGES, *arrays)
  assert scorer.fid(batched, comparison.images, comparison.images) == (
      pytest.approx(0.0, abs=1e-3))


@pytest.mark.parametrize("args, message", [
    (("--methods=spg,dalle",), "Unknown method(s) 'dalle'; the methods are"),
    (("--compare_workdir=sg_noseg={workdir}",),
     "trained with config.model.guidance='labels', but sg_noseg is SG-Net"
     " trained with guidance='none'"),
    (("--compare_workdir=sg_gt={workdir}",), "only sg_noseg run(s)"),
    (("--num_images=65",), "the 'test' split of synthetic_scenes/s32 holds"
                           " 64 examples; ask for at most 64"),
])
def test_bad_input_is_refused_with_a_clear_error(
    args, message, tiny_workdir, scenes_data_dir, tmp_path
):
  args = [arg.format(workdir=tiny_workdir) for arg in args]
  with pytest.raises(app.UsageError) as error:
    _main(*_run_args(tiny_workdir, scenes_data_dir, tmp_path), *args)
  assert message in str(error.value)
  assert not (tmp_path / "results.json").exists()
