"""Evaluation on the test split with fixed holes, against a trivial baseline.

For every test image and its seeded hole, SPG-Net predicts the hole's labels
from the known region's labels (S0, from the run's source: the ground truth
or its segmenter) and renders the image. The metrics are
those the paper reports (L1, L2, PSNR, SSIM, on [0, 1] images) over the whole
image and over the hole alone, plus SP-Net's mean IoU and pixel accuracy
inside the hole. The label scores leave out the pixels whose true class is
the class table's void class, as the Cityscapes benchmark does. Two
baselines put the numbers in context: filling the hole with the known
region's mean colour, and labelling it with the known region's most frequent
class. A run with a segmenter also scores it on the known region, the
pixels it labels for SP-Net.
"""

from collections.abc import Callable, Iterable, Mapping
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

_BASELINE_METRICS = ("l1_hole", "l2_hole", "psnr_hole", "ssim_hole")
MEANFILL = "baseline_meanfill"
MAJORITY = "baseline_majority"
SEGMENTER = "segmenter"

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
    function, on_hole = metrics.IMAGE_METRICS[name]
    values = function(output, image, mask if on_hole else None)
    sums[prefix + name] = jnp.sum(values * weight)
  return sums


def _add_to_totals(
    totals: dict[str, np.ndarray], sums: Mapping[str, jax.Array]
) -> None:
  """Adds a finished batch's sums into host totals: int64 counts, float64."""
  for name, value in jax.device_get(sums).items():
    value = np.asarray(value)
    wide = np.int64 if np.issubdtype(value.dtype, np.integer) else np.float64
    totals[name] = totals.get(name, 0) + value.astype(wide)


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
    known = networks.known_label_map(params, image, mask, label)
    predicted, output = networks.complete(params, image, known, mask)
    sums = _weighted_sums(
        "", tuple(metrics.IMAGE_METRICS), output, image, mask, weight
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
    in_hole = (mask[..., 0] > 0) & (weight[:, None, None] > 0)
    sums["confusion"] = metrics.confusion_matrix(
        label, predicted, num_classes, in_hole
    )
    sums[f"{MAJORITY}/confusion"] = metrics.confusion_matrix(
        label, majority_fill(label, mask, num_classes), num_classes, in_hole
    )
    if networks.seg is not None:
      in_known = (mask[..., 0] == 0) & (weight[:, None, None] > 0)
      sums[f"{SEGMENTER}/confusion_known"] = metrics.confusion_matrix(
          label,
          networks.segment(params["seg"], image, mask),
          num_classes,
          in_known,
      )
    return sums

  return eval_step


def evaluate(
    eval_step: EvalStep,
    params: dict[str, Any],
    batches: Iterable[Mapping[str, np.ndarray]],
    mesh: jax.sharding.Mesh,
    void_id: int | None = None,
) -> dict[str, float]:
  """Evaluates `params` on `batches`; returns flat metrics.

  Each batch's sums come to the host once the dispatch window has waited for
  them anyway, and are totalled there in int64 (pixel counts) and float64,
  so the totals are exact however large the split.

  Args:
    eval_step: the step that `make_eval_step` made for the networks.
    params: the four networks' parameters, replicated on `mesh`.
    batches: this process's evaluation batches, each with a `weight` per
      example (0 for padding), as `input_pipeline.create_eval_iterator` yields.
    mesh: the device mesh.
    void_id: the class table's void class (`ClassTable.void_id`), whose true
      pixels the label scores leave out; None scores every class.

  Raises:
    ValueError: `batches` hold no real example.
  """
  in_flight = dispatch_window.DispatchWindow()
  totals: dict[str, np.ndarray] = {}
  for batch in batches:
    sums = eval_step(params, sharding.shard_batch(batch, mesh))
    finished = in_flight.add(sums)
    if finished is not None:
      _add_to_totals(totals, finished)
  for finished in in_flight.drain():
    _add_to_totals(totals, finished)
  if not totals.get("count"):
    raise ValueError(
        "The evaluation split has no examples: check that config.data's"
        " eval_split names a split with examples in the dataset."
    )
  count = totals.pop("count")
  results = {}
  for prefix in ("", f"{MAJORITY}/"):
    confusion = totals.pop(f"{prefix}confusion")
    results[f"{prefix}miou_hole"] = metrics.mean_iou(confusion, void_id)
    results[f"{prefix}pixel_accuracy_hole"] = metrics.pixel_accuracy(
        confusion, void_id
    )
  if f"{SEGMENTER}/confusion_known" in totals:
    confusion = totals.pop(f"{SEGMENTER}/confusion_known")
    results[f"{SEGMENTER}/miou_known"] = metrics.mean_iou(confusion, void_id)
    results[f"{SEGMENTER}/pixel_accuracy_known"] = metrics.pixel_accuracy(
        confusion, void_id
    )
  results |= {name: total / count for name, total in totals.items()}
  results["num_examples"] = count
  return {name: float(value) for name, value in sorted(results.items())}


def write_metrics_json(
    path: epath.PathLike, results: dict[str, float]
) -> None:
  """Writes the flat metrics dict as JSON, atomically."""
  atomic_files.write_text(path, json.dumps(results, indent=2, sort_keys=True))
