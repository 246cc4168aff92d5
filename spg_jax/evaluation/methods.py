"""The inpainting methods that `compare` puts side by side, by name.

Every method fills a batch the same way: images uint8 [B, H, W, 3], holes
bool [B, H, W] (True = missing) and the true labels int [B, H, W] go in; the
filled images uint8 [B, H, W, 3] come out, with the label map [B, H, W] that
guided the fill, or None for a method that no labels guide. Only the
`sg_gt` method and SP-Net's known region read the true labels; every
other method sees no more than a user would.

- `spg`: SPG-Net as a user runs it. SP-Net predicts the hole's labels from
  the known region's, which come from the run's own source
  (`config.known_labels`: its segmenter, or the ground truth), and SG-Net
  renders the hole from them.
- `spg_gt_known`: the same, given the known region's true labels whatever
  the run's source: SPG-Net with a perfect segmenter.
- `sg_gt`: SG-Net alone, rendering from the true labels of the whole image,
  hole included: the most that label guidance can give.
- `sg_noseg`: the SG-Net of another run, one trained without labels
  (`config.model.guidance='none'`, the paper's ablation), named by
  `--compare_workdir=sg_noseg=WORKDIR`.
- `patchmatch`, `telea`, `navier_stokes`, `meanfill`: the classical methods
  of `spg_jax.evaluation.baselines`, one image at a time.

A method that cannot run here is left out with the reason, never replaced.
"""

from collections.abc import Callable, Iterable, Mapping
import dataclasses

import ml_collections
import numpy as np

from spg_jax.evaluation import baselines
from spg_jax.inference import inpaint

# (images, holes, true labels) -> (filled images, guiding labels or None).
Fill = Callable[
    [np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray | None]
]

NETWORK_METHODS = ("spg", "spg_gt_known", "sg_gt", "sg_noseg")
# Every method, in the order a report lists them.
METHODS = NETWORK_METHODS + baselines.METHODS
# The methods that run another run's networks, named by
# --compare_workdir=NAME=WORKDIR, and the `config.model.guidance` that run
# must have been trained with.
COMPARE_RUN_GUIDANCE = {"sg_noseg": "none"}


@dataclasses.dataclass(frozen=True)
class Method:
  """A method ready to run.

  Attributes:
    name: one of `METHODS`.
    fill: fills a batch (see the module docstring).
    predicts_labels: whether SP-Net predicted the labels that guide the fill,
      so that their mIoU inside the hole is SP-Net's score.
  """

  name: str
  fill: Fill
  predicts_labels: bool = False


def check_names(names: Iterable[str]) -> list[str]:
  """Returns `names` without repeats, in their order.

  Raises:
    ValueError: a name is not one of `METHODS`.
  """
  names = list(dict.fromkeys(names))
  unknown = [name for name in names if name not in METHODS]
  if unknown:
    raise ValueError(
        f"Unknown method(s) {', '.join(map(repr, unknown))}; the methods are"
        f" {', '.join(METHODS)}."
    )
  if not names:
    raise ValueError(f"No method named; choose from {', '.join(METHODS)}.")
  return names


def check_compare_run(name: str, config: ml_collections.ConfigDict) -> None:
  """Checks that the run named for method `name` suits it.

  Raises:
    ValueError: `name` takes no run of its own, or the run's
      `config.model.guidance` is not the one the method needs.
  """
  if name not in COMPARE_RUN_GUIDANCE:
    raise ValueError(
        f"--compare_workdir names the method {name!r}, but only"
        f" {', '.join(COMPARE_RUN_GUIDANCE)} run(s) the networks of another"
        " run; write --compare_workdir=sg_noseg=WORKDIR."
    )
  wanted = COMPARE_RUN_GUIDANCE[name]
  guidance = config.model.get("guidance", "labels")
  if guidance != wanted:
    raise ValueError(
        f"The run given for {name} was trained with"
        f" config.model.guidance={guidance!r}, but {name} is SG-Net trained"
        f" with guidance={wanted!r}: train such a run"
        f" (--config.model.guidance={wanted}) and name its workdir."
    )


def _spg(inpainter: inpaint.Inpainter, true_known_labels: bool) -> Fill:
  """SPG-Net end to end; SP-Net reads the true labels of the known region if
  `true_known_labels`, else those `Inpainter.label_known_region` gives."""

  def fill(images, holes, labels):
    predicted, output = inpainter.complete(
        images, holes, labels if true_known_labels else None
    )
    return output, predicted

  return fill


def _sg_from_truth(inpainter: inpaint.Inpainter) -> Fill:
  def fill(images, holes, labels):
    return inpainter.render(images, holes, labels), labels

  return fill


def _sg_unguided(inpainter: inpaint.Inpainter) -> Fill:
  def fill(images, holes, labels):
    # SG-Net of a guidance='none' run takes a label map and reads none of it.
    return inpainter.render(images, holes, np.zeros_like(labels)), None

  return fill


def _baseline(name: str) -> Fill:
  fill_one = baselines.get(name)

  def fill(images, holes, labels):
    del labels
    return np.stack([fill_one(*pair) for pair in zip(images, holes)]), None

  return fill


def build(
    names: Iterable[str],
    inpainter: inpaint.Inpainter,
    compare_runs: Mapping[str, inpaint.Inpainter],
) -> tuple[list[Method], dict[str, str]]:
  """The methods of `names` that can run, and why each of the others cannot.

  Args:
    names: method names, checked by `check_names`.
    inpainter: the labels-guided run under evaluation.
    compare_runs: the runs of `COMPARE_RUN_GUIDANCE`'s methods, by method
      name, each checked by `check_compare_run`.

  Returns:
    The methods in the order of `names`, and {name: reason} for those left
    out.
  """
  ready, left_out = [], {}
  for name in check_names(names):
    if name in ("spg", "spg_gt_known"):
      true_known = (name == "spg_gt_known"
                    or inpainter.networks.known_labels == "ground_truth")
      ready.append(
          Method(name, _spg(inpainter, true_known), predicts_labels=True)
      )
    elif name == "sg_gt":
      ready.append(Method(name, _sg_from_truth(inpainter)))
    elif name in COMPARE_RUN_GUIDANCE:
      if name in compare_runs:
        ready.append(Method(name, _sg_unguided(compare_runs[name])))
      else:
        left_out[name] = (
            f"{name} needs a run trained with config.model.guidance="
            f"{COMPARE_RUN_GUIDANCE[name]!r}; name its workdir with"
            f" --compare_workdir={name}=WORKDIR."
        )
    else:
      reason = baselines.unavailable_reason(name)
      if reason is None:
        ready.append(Method(name, _baseline(name)))
      else:
        left_out[name] = reason
  return ready, left_out
