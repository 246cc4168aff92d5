r"""SPG-Net on Helen face parsing as in the paper.

Faces squashed to 256x256 with their 11 classes (background, skin, brows,
eyes, nose, lips, inner mouth, hair), one rectangular hole per image with
sides between 1/8 and 1/2 of the image, each network trained 200 epochs over
the 2,000 train faces (learning rate decaying linearly to 0 over the last
100), then both jointly for 100 (the rate of this phase is our choice, the
paper does not state it: back at the peak, decaying over the last 50);
evaluation on the 100 test faces. Needs
`SmithCVPR2013_dataset_resized.zip` in `data/helen` (see data/README.md), and
SG-Net's perceptual loss (LPIPS on AlexNet) and the segmenter's ImageNet
backbone, as the paper's, need their converted weights, from
`spg-weights --names=lpips,resnet50`:

  python -m spg_jax.main --config=configs/helen.py --workdir=/tmp/spg_helen

`--config=configs/helen.py:tiny` runs the same data and code for seconds.
"""

import ml_collections

from configs import default

NUM_TRAIN_EXAMPLES = 2000


def get_config(variant: str | None = None) -> ml_collections.ConfigDict:
  """Returns the Helen config; `variant='tiny'` for a smoke test."""
  config = default.get_config()
  config.data.name = "helen"
  config.data.manual_dir = "data/helen"
  config.data.classes = "helen"
  config.data.train_split = "train"
  config.data.eval_split = "test"
  # The paper's lengths; the joint phase's rate is our choice.
  default.set_paper_schedule(config, NUM_TRAIN_EXAMPLES)
  # LPIPS on AlexNet (our weight) and an ImageNet backbone, as the paper.
  default.set_paper_pretrained_networks(config)
  default.apply_variant(config, variant)
  return config
