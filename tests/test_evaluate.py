"""Tests of evaluation: its baselines by hand, void, exact totals, and
refusing an empty split."""

import fractions

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import synthetic
from spg_jax.data import classes
from spg_jax.evaluation import evaluate
from spg_jax.models import spg
from spg_jax.runtime import sharding
from spg_jax.training import steps


def test_mean_fill_paints_the_hole_with_the_known_mean_colour():
  image = jnp.array([[[1.0], [3.0]], [[5.0], [-7.0]]])[None]  # 1x2x2x1
  mask = jnp.array([[[0.0], [0.0]], [[0.0], [1.0]]])[None]
  filled = evaluate.mean_fill(image, mask)
  np.testing.assert_allclose(filled[0, :, :, 0], [[1.0, 3.0], [5.0, 3.0]])


def test_majority_fill_labels_the_hole_with_the_most_frequent_known_class():
  labels = jnp.array([[[2, 2, 1], [0, 2, 1]]])  # 1x2x3; known: 2, 2, 1, 0
  mask = jnp.array([[[0, 0, 0], [0, 1, 1]]], jnp.float32)[..., None]
  filled = evaluate.majority_fill(labels, mask, num_classes=3)
  np.testing.assert_array_equal(filled, [[[2, 2, 1], [0, 2, 2]]])


@pytest.fixture(name="tiny_evaluation", scope="module")
def _tiny_evaluation():
  config = synthetic.get_config("tiny")
  mesh = sharding.make_mesh()
  networks = spg.Networks.from_config(config)
  params = sharding.replicate(
      steps.create_train_state(config, networks, jax.random.key(0)).params,
      mesh,
  )
  return config, params, mesh, evaluate.make_eval_step(networks)


def _zero_batch(config, weight: float) -> dict[str, np.ndarray]:
  size, batch_size = config.data.image_size, config.eval.batch_size
  return {
      "image": np.zeros([batch_size, size, size, 3], np.float32),
      "label": np.zeros([batch_size, size, size], np.int32),
      "mask": np.ones([batch_size, size, size, 1], np.float32),
      "weight": np.full([batch_size], weight, np.float32),
  }


def test_a_split_without_batches_is_refused(tiny_evaluation):
  _, params, mesh, eval_step = tiny_evaluation
  with pytest.raises(ValueError, match="evaluation split has no examples"):
    evaluate.evaluate(eval_step, params, [], mesh)


def test_a_split_of_padding_alone_is_refused(tiny_evaluation):
  """Examples of weight 0 pad the last batch; a split of nothing else would
  otherwise give NaN metrics."""
  config, params, mesh, eval_step = tiny_evaluation
  padding = _zero_batch(config, weight=0.0)
  with pytest.raises(ValueError, match="evaluation split has no examples"):
    evaluate.evaluate(eval_step, params, [padding], mesh)


def _hole_label_scores(truth, predicted, hole, void_id, num_classes):
  """mIoU and pixel accuracy from their definitions, one class at a time."""
  scored = hole if void_id is None else hole & (truth != void_id)
  ious = []
  for c in range(num_classes):
    union = np.sum(scored & ((truth == c) | (predicted == c)))
    if c != void_id and union:
      ious.append(np.sum(scored & (truth == c) & (predicted == c)) / union)
  accuracy = np.sum(scored & (truth == predicted)) / np.sum(scored)
  return np.mean(ious), accuracy


def test_the_majority_baseline_leaves_void_truth_out(tiny_evaluation):
  """Known regions of one class make the majority labels known (void for
  the second example, an error on its non-void hole pixels); the holes (a
  different one per example) hold void and other classes at random."""
  config, params, mesh, eval_step = tiny_evaluation
  table = classes.get_class_table(config.data.classes)
  void_id, num_classes = table.void_id, table.num_classes
  assert void_id == 0
  batch = _zero_batch(config, weight=1.0)
  # The last example is padding; had it counted, its hole of class 4
  # labelled 4 would raise every score.
  batch["weight"][-1] = 0.0
  known_class = [1, 0, 2, 4]
  holes = [(4, 20, 6, 18), (10, 30, 0, 12), (0, 8, 20, 32), (8, 24, 8, 24)]
  rng = np.random.default_rng(0)
  batch["mask"][:] = 0.0
  for i, (top, bottom, left, right) in enumerate(holes):
    batch["label"][i] = known_class[i]
    batch["mask"][i, top:bottom, left:right] = 1.0
    batch["label"][i, top:bottom, left:right] = (
        4 if i == 3 else rng.choice([0, 1, 2, 3], [bottom - top, right - left])
    )
  batch["image"][:] = rng.uniform(-1, 1, batch["image"].shape)
  real = slice(0, 3)
  hole = batch["mask"][real, ..., 0] > 0
  truth = batch["label"][real]
  predicted = np.array(known_class[:3])[:, None, None]
  for void in (void_id, None):
    results = evaluate.evaluate(eval_step, params, [batch], mesh, void)
    miou, accuracy = _hole_label_scores(
        truth, predicted, hole, void, num_classes
    )
    assert results[f"{evaluate.MAJORITY}/miou_hole"] == pytest.approx(miou)
    assert results[f"{evaluate.MAJORITY}/pixel_accuracy_hole"] == (
        pytest.approx(accuracy)
    )
    assert 0.0 <= results["pixel_accuracy_hole"] <= 1.0
  # Void is a quarter of the holes, scoring it changes the scores.
  assert _hole_label_scores(truth, predicted, hole, None, num_classes) != (
      pytest.approx(_hole_label_scores(truth, predicted, hole, 0, num_classes))
  )


def test_label_totals_past_2_31_are_exact(tiny_evaluation):
  """Each batch counts in int32; the split's totals pass 2**31 exactly.

  More batches than the dispatch window holds, so that the totals take
  both the batches it hands back and those left in it at the end.
  """
  config, _, mesh, _ = tiny_evaluation
  num_batches, cell = 12, 2**28 + 1
  confusion = jnp.array([[cell, 1], [0, cell - 1]], jnp.int32)

  @jax.jit
  def counting_step(params, batch):
    del params
    return {
        "count": jnp.sum(batch["weight"]),
        "confusion": confusion,
        f"{evaluate.MAJORITY}/confusion": confusion,
    }

  batches = [_zero_batch(config, weight=1.0)] * num_batches
  results = evaluate.evaluate(counting_step, None, batches, mesh)
  # Totals [[big + 12, 12], [0, big]], big = 12 * 2**28 > 2**31.
  big = fractions.Fraction(num_batches * 2**28)
  miou = ((big + 12) / (big + 24) + big / (big + 12)) / 2
  accuracy = (2 * big + 12) / (2 * big + 24)
  for prefix in ("", f"{evaluate.MAJORITY}/"):
    assert results[f"{prefix}miou_hole"] == pytest.approx(
        float(miou), rel=1e-15
    )
    assert results[f"{prefix}pixel_accuracy_hole"] == pytest.approx(
        float(accuracy), rel=1e-15
    )
  assert results["num_examples"] == num_batches * config.eval.batch_size
