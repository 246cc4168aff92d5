"""LPIPS and FID of inpainted images, on the pretrained networks when present.

Modern inpainting papers (LaMa, CoModGAN) report two scores that pixel
metrics miss:

- LPIPS (v0.1 on AlexNet) between each fill and its real image, over the
  whole image: lower is closer as people judge it.
- FID, the Fréchet distance between the Inception pool3 statistics of all
  fills and of all real images of the set. It is a property of the set,
  biased upward for small sets (the covariance of 2048 features from a few
  hundred images is poorly estimated), so it compares methods on the same
  images only, and is unreliable below a few thousand.

Each score needs its network's converted weights (`spg-weights`); a score
whose weights are missing is left out with the reason, and nothing fails.
"""

from collections.abc import Callable
import dataclasses

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from spg_jax.inference import inpaint
from spg_jax.pretrained import conversion
from spg_jax.pretrained import converted
from spg_jax.pretrained import inception
from spg_jax.pretrained import lpips
from spg_jax.pretrained import published

# The eval config keys of each score's converted weights, and the network.
WEIGHT_KEYS = {"lpips": ("lpips_weights", "lpips"),
               "fid": ("fid_weights", "inception_fid")}
# Below this many images, results.md calls FID unreliable.
FID_RELIABLE_IMAGES = 5000

Batched = Callable[..., np.ndarray]


@jax.jit
def _lpips_distances(params, outputs: jax.Array, images: jax.Array
                     ) -> jax.Array:
  return lpips.LPIPS().apply({"params": params}, inpaint.to_float(outputs),
                             inpaint.to_float(images))


@jax.jit
def _pool3(params, images: jax.Array) -> jax.Array:
  return inception.InceptionV3FID().apply(
      {"params": params}, images.astype(jnp.float32) / 255.0)


@dataclasses.dataclass
class PerceptualScorer:
  """Scores fills with whichever of LPIPS and FID has its weights.

  Attributes:
    params: the loaded networks' parameters, by score ('lpips', 'fid').
    not_measured: why each other score is left out.
    real_statistics: the real images' Inception statistics, once computed.
  """

  params: dict[str, dict]
  not_measured: dict[str, str]
  real_statistics: tuple[np.ndarray, np.ndarray] | None = None

  @classmethod
  def from_config(cls, eval_config: ml_collections.ConfigDict
                  ) -> "PerceptualScorer":
    """Loads each score's weights from `eval_config`'s paths ('' for the
    cache's); a score whose weights are missing or damaged is left out."""
    params, not_measured = {}, {}
    for score, (key, network) in WEIGHT_KEYS.items():
      try:
        params[score] = converted.load(network, eval_config.get(key, ""))
      except (published.WeightsUnavailableError,
              conversion.WeightsError) as error:
        not_measured[score] = str(error)
    return cls(params, not_measured)

  def lpips(self, batched: Batched, outputs: np.ndarray,
            images: np.ndarray) -> np.ndarray | None:
    """Each fill's LPIPS distance to its image (uint8 [N, H, W, 3]), or
    None without the LPIPS weights. `batched(function, *arrays)` applies a
    function batch by batch and concatenates."""
    if "lpips" not in self.params:
      return None
    return batched(lambda a, b: _lpips_distances(self.params["lpips"], a, b),
                   outputs, images)

  def fid(self, batched: Batched, outputs: np.ndarray,
          images: np.ndarray) -> float | None:
    """The FID of the fills against the real images, or None without the
    Inception weights."""
    if "fid" not in self.params:
      return None
    features = lambda x: batched(lambda y: _pool3(self.params["fid"], y), x)
    if self.real_statistics is None:
      self.real_statistics = inception.statistics(features(images))
    return inception.frechet_distance(
        inception.statistics(features(outputs)), self.real_statistics)


def fid_caveat(num_images: int) -> str:
  """What results.md says of FID over `num_images` images."""
  reliability = ("unreliable at this size: FID is biased upward on small"
                 " sets, so compare methods on this set only"
                 if num_images < FID_RELIABLE_IMAGES
                 else "compare methods on the same images only")
  return (f"'FID': the Fréchet Inception distance between all {num_images}"
          f" fills and their real images, {reliability}.")
