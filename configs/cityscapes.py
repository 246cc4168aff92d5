r"""SPG-Net on Cityscapes as in the paper.

256x256 images squashed from the 2:1 frames, labels grouped into the 8
Cityscapes categories, one rectangular hole per image with sides between 1/8
and 1/2 of the image, each network trained 200 epochs over the 2,975 train
images (learning rate decaying linearly to 0 over the last 100), then both
jointly for 100 (the rate of this phase is our choice, the paper does not
state it: back at the peak, decaying over the last 50); evaluation on the
500 val images, as the paper's test set. Needs
`leftImg8bit_trainvaltest.zip` and `gtFine_trainvaltest.zip` in
`data/cityscapes` (see data/README.md), and SG-Net's perceptual loss (LPIPS
on AlexNet) and the segmenter's ImageNet backbone, as the paper's, need
their converted weights, from `spg-weights --names=lpips,resnet50`:

  python -m spg_jax.main --config=configs/cityscapes.py --workdir=/tmp/spg_cityscapes

Options:
  --config.data.classes=cityscapes_train_ids \
  --config.data.label_map=cityscapes_label_ids_to_train_ids
      the 19 benchmark trainIds (+ void) instead of the 8 categories;
  --config.data.resize=crop
      random 256x256 crops of the frame scaled to 256x512, instead of squashing;
  --config.data.manual_dir=DIR
      where the two archives are.

`--config=configs/cityscapes.py:tiny` runs the same data and code for seconds.
"""

import ml_collections

from configs import default

NUM_TRAIN_EXAMPLES = 2975


def get_config(variant: str | None = None) -> ml_collections.ConfigDict:
  """Returns the Cityscapes config; `variant='tiny'` for a smoke test."""
  config = default.get_config()
  config.data.name = "cityscapes/semantic_segmentation"
  config.data.manual_dir = "data/cityscapes"
  config.data.image_key = "image_left"
  config.data.label_key = "segmentation_label"
  config.data.classes = "cityscapes_categories"
  config.data.label_map = "cityscapes_label_ids_to_categories"
  config.data.train_split = "train"
  config.data.eval_split = "validation"
  # The paper's lengths; the joint phase's rate is our choice.
  default.set_paper_schedule(config, NUM_TRAIN_EXAMPLES)
  # LPIPS on AlexNet (our weight) and an ImageNet backbone, as the paper.
  default.set_paper_pretrained_networks(config)
  default.apply_variant(config, variant)
  return config
