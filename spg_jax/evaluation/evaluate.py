"""Evaluation on the test split with fixed holes, against a trivial baseline.

For every test image and its seeded hole, SPG-Net predicts the hole's labels
from the known ground-truth labels (S0) and renders the image. The metrics are
those the paper reports (L1, L2, PSNR, SSIM, on [0, 1] images) over the whole
image and over the hole alone, plus SP-Net's mean IoU inside the hole. Two
baselines put the numbers in context: filling the hole with the known
region's mean colour, and labelling it with the known region's most frequent
class.
"""

from collections.abc import Callable, Iterable, Mapping
import functools
import json
from typing import Any

from etils import epath
import jax
import jax.numpy as jnp
import numpy as np

from spg_jax.evaluation import metrics
from spg_jax.models import spg
from spg_jax.runtime import atomic_files
from spg_jax.runtime import dispatch_window
from spg_jax.runtime import sharding

# Per-image metrics: name -> (function, whether it is scored on the hole).
_IMAGE_METRICS = {
    "l1": (metrics.per_image_l1, False),
    "l2": (metrics.per_image_l2, False),
    "psnr": (metrics.per_image_psnr, False),
    "ssim": (metrics.per_image_ssim, False),
    "l1_hole": (metrics.per_image_l1, True),
    "l2_hole": (metrics.per_image_l2, True),
    "psnr_hole": (metrics.per_image_psnr, True),
    "ssim_hole": (metrics.per_image_ssim, True),
}
_BASELINE_METRICS = ("l1_hole", "l2_hole", "psnr_hole", "ssim_hole")
MEANFILL = "baseline_meanfill"
MAJORITY = "baseline_majority"

# (params, batch) -> sums over the batch of every metric's terms.
EvalStep = Callable[[Any, Mapping[str, jax.Array]], dict[str, jax.Array]]


def mean_fill(image: jax.Array, mask: jax.Array) -> jax.Array:
  """Fills each image's hole with the mean colour of its known region."""
  known = 1.0 - mask
  mean = jnp.sum(image * known, axis=(1, 2), keepdims=True) / jnp.maximum(
      jnp.sum(known, axis=(1, 2), keepdims=True), 1.0
  )
  return jnp.where(mask > 0, mean, image)


def majority_fill(
    labels: jax.Array, mask: jax.Array, num_classes: int
) -> jax.Array:
  """Labels each image's hole with the most frequent class of its known region."""
  counts = jnp.sum(
      jax.nn.one_hot(labels, num_classes) * (1.0 - mask), axis=(1, 2)
  )
  majority = jnp.argmax(counts, axis=-1)[:, None, None]
  return jnp.where(mask[..., 0] > 0, majority, labels)


def _weighted_sums(
    prefix: str,
    names: tuple[str, ...],
    output: jax.Array,
    image: jax.Array,
    mask: jax.Array,
    weight: jax.Array,
) -> dict[str, jax.Array]:
  """Sums of per-image metrics over the batch's real examples."""
  sums = {}
  for name in names:
    function, on_hole = _IMAGE_METRICS[name]
    values = function(output, image, mask if on_hole else None)
    sums[prefix + name] = jnp.sum(values * weight)
  return sums


# Running totals plus a batch's sums, as one computation rather than one per
# metric, so that the batches in flight stay within XLA:CPU's limit (see
# `dispatch_window`); defined once, so it compiles once per process.
_add_totals = jax.jit(functools.partial(jax.tree.map, jnp.add))


def make_eval_step(networks: spg.Networks) -> EvalStep:
  """Returns the jitted evaluation step of `networks`.

  Make it once per run and pass it to every `evaluate` call: each new step
  compiles anew.
  """
  num_classes = networks.num_classes

  @jax.jit
  def eval_step(params, batch) -> dict[str, jax.Array]:
    image, label, mask = batch["image"], batch["label"], batch["mask"]
    weight = batch["weight"]
    predicted, output = networks.complete(
        params, image, networks.one_hot(label), mask
    )
    hole_weight = mask[..., 0] * weight[:, None, None]
    sums = _weighted_sums(
        "", tuple(_IMAGE_METRICS), output, image, mask, weight
    )
    sums |= _weighted_sums(
        f"{MEANFILL}/",
        _BASELINE_METRICS,
        mean_fill(image, mask),
        image,
        mask,
        weight,
    )
    sums["count"] = jnp.sum(weight)
    sums["confusion"] = metrics.confusion_matrix(
        label, predicted, num_classes, hole_weight
    )
    sums[f"{MAJORITY}/confusion"] = metrics.confusion_matrix(
        label, majority_fill(label, mask, num_classes), num_classes, hole_weight
    )
    return sums

  return eval_step


def evaluate(
    eval_step: EvalStep,
    params: dict[str, Any],
    batches: Iterable[Mapping[str, np.ndarray]],
    mesh: jax.sharding.Mesh,
) -> dict[str, float]:
  """Evaluates `params` on `batches`; returns flat metrics.

  Args:
    eval_step: the step that `make_eval_step` made for the networks.
    params: the four networks' parameters, replicated on `mesh`.
    batches: this process's evaluation batches, each with a `weight` per
      example (0 for padding), as `input_pipeline.create_eval_iterator` yields.
    mesh: the device mesh.

  Raises:
    ValueError: `batches` hold no real example.
  """
  in_flight = dispatch_window.DispatchWindow()
  totals = None
  for batch in batches:
    sums = eval_step(params, sharding.shard_batch(batch, mesh))
    totals = sums if totals is None else _add_totals(totals, sums)
    in_flight.add(totals)
  totals = None if totals is None else jax.device_get(totals)
  if totals is None or not totals["count"]:
    raise ValueError(
        "The evaluation split has no examples: check that config.data's"
        " eval_split names a split with examples in the dataset."
    )
  count = totals.pop("count")
  results = {
      "miou_hole": metrics.mean_iou(totals.pop("confusion")),
      f"{MAJORITY}/miou_hole": metrics.mean_iou(
          totals.pop(f"{MAJORITY}/confusion")
      ),
  }
  results |= {name: total / count for name, total in totals.items()}
  results["num_examples"] = count
  return {name: float(value) for name, value in sorted(results.items())}


def write_metrics_json(
    path: epath.PathLike, results: dict[str, float]
) -> None:
  """Writes the flat metrics dict as JSON, atomically."""
  atomic_files.write_text(path, json.dumps(results, indent=2, sort_keys=True))
