r"""Paper-size SPG-Net on the synthetic street scenes at 256x256.

The networks and losses follow docs/design.md's defaults (pix2pixHD's
global generator and multi-scale PatchGAN, LSGAN, feature matching weight
10, Adam with betas 0.5/0.999). Each phase (SP-Net alone, SG-Net alone, both)
has its own schedule: a rate of 2e-4, constant, then decaying linearly to 0
over the phase's last half. Other configs import this one and override what
differs.

  python -m spg_jax.main --config=configs/default.py --workdir=/tmp/spg_default

`--config=configs/default.py:tiny` runs the same data and code for seconds.
"""

import math

import ml_collections

from spg_jax.data import mask_config

# Every phase's peak learning rate: pix2pixHD's Adam rate.
LEARNING_RATE = 2e-4


def _generator() -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict(
      dict(
          base_features=64,
          num_downsamplings=4,
          num_blocks=9,
          dilation=1,
          norm="instance",
          upsampling="transpose",
          # How the last 7x7 convolution is computed: 'direct' or
          # 'space_to_depth' (spg_jax.models.space_to_depth), the same
          # function and parameters either way.
          output_conv_form="direct",
          # How the 'transpose' upsamplings are computed: 'phases' or
          # 'direct' (spg_jax.models.layers.UPSAMPLING_FORMS), the same
          # function and parameters either way.
          upsampling_form="phases",
      )
  )


def get_config(variant: str | None = None) -> ml_collections.ConfigDict:
  """Returns the default config; `variant='tiny'` shrinks it to a smoke test."""
  config = ml_collections.ConfigDict()
  config.seed = 0
  # The networks compute in this dtype; parameters, optimizer state, norm
  # statistics and losses stay float32. bfloat16 is the fast choice on TPUs
  # and GPUs; CPUs are faster in float32.
  config.dtype = "bfloat16"

  config.data = ml_collections.ConfigDict()
  config.data.name = "synthetic_scenes/s256"
  config.data.data_dir = ml_collections.config_dict.placeholder(str)
  # Where a dataset that must be downloaded by hand keeps its archives.
  config.data.manual_dir = ml_collections.config_dict.placeholder(str)
  config.data.image_key = "image"
  config.data.label_key = "label"
  # The channel of the label feature that holds the label values.
  config.data.label_channel = 0
  # A feature naming each example, used in error messages; None if none.
  config.data.id_key = ml_collections.FieldReference("image_id", str)
  # The class table (spg_jax.data.classes) and the map from the stored
  # label values to its ids; None when the dataset stores the ids.
  config.data.classes = "cityscapes_categories"
  config.data.label_map = ml_collections.config_dict.placeholder(str)
  # One more stored value, one the label map does not list (e.g. 255 for
  # "unlabelled"), admitted and turned into the class id
  # extra_label_value_class; set both or neither.
  config.data.extra_label_value = ml_collections.config_dict.placeholder(int)
  config.data.extra_label_value_class = (
      ml_collections.config_dict.placeholder(int)
  )
  config.data.image_size = 256
  config.data.resize = "squash"
  config.data.train_split = "train"
  config.data.eval_split = "test"
  config.data.shuffle_buffer_size = 4096
  # Keep the decoded, resized training split in memory after the first epoch.
  config.data.cache = True

  config.masks = mask_config.default_mask_config()

  config.model = ml_collections.ConfigDict()
  config.model.sp_generator = _generator()
  config.model.sg_generator = _generator()
  config.model.discriminator = ml_collections.ConfigDict(
      dict(num_scales=2, base_features=64, num_layers=3, norm="instance")
  )
  # DeepLabv3+ labelling the corrupted image's known region
  # (spg_jax.models.segmenter); paper values, on ResNet-50.
  config.model.segmenter = ml_collections.ConfigDict(
      dict(
          # Bottleneck blocks per stage: ResNet-50's.
          stage_sizes=(3, 4, 6, 3),
          # The first stage's inner width, doubled per stage: ResNet-50's.
          base_features=64,
          # Input size over the last stage's: 16 or 8 (DeepLabv3+ trains at 16).
          output_stride=16,
          # ASPP's atrous rates: DeepLabv3+'s at output stride 16.
          aspp_rates=(6, 12, 18),
          # The width of each ASPP branch and of its output: DeepLabv3+'s.
          aspp_features=256,
          # The decoder's 1x1 reduction of the stride-4 features: DeepLabv3+'s.
          low_level_features=48,
          # The width of the decoder's two 3x3 convolutions: DeepLabv3+'s.
          decoder_features=256,
          # GroupNorm's groups (ours, for BatchNorm), clamped to divide.
          norm_groups=32,
          # Where the backbone starts: '' from scratch (GroupNorm, ours);
          # 'imagenet' from the converted ImageNet ResNet-50 in the weights
          # cache (`spg-weights --names=resnet50`), or a converted file's
          # path, its batch norms kept as fixed scales and biases
          # (spg_jax.models.segmenter).
          backbone_weights="",
      )
  )
  # Activation memory for compute: 'none', 'conv_outputs' or 'full' (see
  # spg_jax.models.layers.REMAT_POLICIES).
  config.model.remat = "none"
  # What SG-Net renders from (spg_jax.models.generators.GUIDANCES): 'labels'
  # is SPG-Net; 'none' is the paper's ablation, the same generator and
  # losses with no label input (its discriminator sees no labels either).
  config.model.guidance = "labels"
  # Where SG-Net reads the labels (spg_jax.models.generators
  # .LABEL_INJECTIONS): 'input', the paper's, with the image at the
  # generator's input; 'decoder' (ours) also at every decoder stage.
  config.model.label_injection = "input"
  # Where SP-Net's known-region labels come from in training, evaluation
  # and inference (spg_jax.models.spg.KNOWN_LABEL_SOURCES): 'segmenter', as
  # the paper labels the corrupted image with DeepLabv3+, or
  # 'ground_truth', the dataset's labels.
  config.known_labels = "segmenter"

  config.loss = ml_collections.ConfigDict()
  config.loss.gan = "lsgan"
  config.loss.gan_weight = 1.0
  config.loss.feature_matching_weight = 10.0
  config.loss.cross_entropy_weight = 10.0
  config.loss.l1_hole_weight = 10.0
  config.loss.l1_known_weight = 1.0
  # Whether SP-Net's hole cross-entropy counts hole pixels whose true class
  # is the class table's void class (spg_jax.data.labelling.ClassTable).
  # True is our choice (the paper does not say): void regions (an ego
  # vehicle's hood, borders) are in the images, and SG-Net renders them from
  # the predicted labels. False leaves them out of the loss, as benchmarks
  # leave void out of their scores; refused for a table without a void class.
  config.loss.cross_entropy_on_void = True
  # SG-Net's perceptual terms on frozen ImageNet networks
  # (spg_jax.training.perceptual), off at weight 0. LPIPS v0.1 on AlexNet
  # is the paper's; the VGG19 term is ours, as pix2pixHD trains with it.
  config.loss.lpips_weight = 0.0
  config.loss.vgg_weight = 0.0
  # The converted weights (`spg-weights` makes them); '' for the cache's
  # (spg_jax.pretrained.converted.converted_path).
  config.loss.lpips_weights = ""
  config.loss.vgg19_weights = ""
  # VGG19's ReLUs compared, and each one's weight: pix2pixHD's.
  config.loss.vgg_taps = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
  config.loss.vgg_tap_weights = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)
  # Ours (the paper's joint phase has only the first term): in the joint
  # phase SG-Net also renders the true labels, and this weight times that
  # render's SG-Net loss joins the loss of its render of SP-Net's labels.
  # Trained only on SP-Net's imperfect labels against the true image,
  # SG-Net learns to lean on the context instead of the labels.
  config.loss.joint_true_labels_weight = 0.0

  # Each network's Adam; its learning rate comes from config.schedule.
  config.optimizer = ml_collections.ConfigDict()
  config.optimizer.b1 = 0.5
  config.optimizer.b2 = 0.999

  # The phases, in order (spg_jax.training.schedules): 'seg' trains the
  # segmenter (its length is our choice; 0 steps for a run without one),
  # 'sp' SP-Net alone, 'sg' SG-Net alone on ground-truth labels, 'joint'
  # both, SG-Net fed SP-Net's prediction. Each phase runs `steps` steps at
  # `learning_rate`, the rate falling linearly to `end_learning_rate` (0)
  # over its last `decay_steps`; a network enters the joint phase at
  # joint's peak rate.
  config.schedule = ml_collections.ConfigDict(
      dict(
          seg=phase_schedule(100_000, decay_steps=50_000),
          sp=phase_schedule(100_000, decay_steps=50_000),
          sg=phase_schedule(100_000, decay_steps=50_000),
          joint=phase_schedule(20_000, decay_steps=10_000),
      )
  )
  config.batch_size = 8
  # Batches placed on the devices ahead of the step that reads them.
  config.prefetch_batches = 2
  # How JAX uses the host CPU when it trains there (spg_jax.runtime.host_cpu); no
  # effect on accelerators. devices: JAX devices the CPU is split into, 0
  # for JAX's default of one; scheduler: XLA:CPU's order of operations.
  config.cpu = ml_collections.ConfigDict(dict(devices=0, scheduler="default"))

  # A step whose losses or updated parameters are not finite is never
  # applied; then 'stop' ends the run at the next log or checkpoint, naming
  # the step, phase and terms, and 'skip' goes on, counting such steps
  # (spg_jax.training.divergence).
  config.on_nonfinite = "stop"
  config.log_every_steps = 100
  config.sample_every_steps = 2_000
  config.num_samples = 4
  config.checkpoint_every_steps = 2_000
  config.keep_checkpoints = 3
  config.eval_every_steps = 20_000
  config.eval = ml_collections.ConfigDict(dict(batch_size=8, seed=1234))
  # spg-evaluate's LPIPS and FID networks (`spg-weights` converts them); ''
  # for the cache's. Without them it leaves those scores out.
  config.eval.lpips_weights = ""
  config.eval.fid_weights = ""
  # JAX's persistent compilation cache (spg_jax.runtime.compilation_cache): a path
  # relative to the workdir, an absolute one (shared by runs), or '' for
  # none (JAX_COMPILATION_CACHE_DIR, if set, wins). A resumed run reads its
  # compiled steps back instead of compiling again.
  config.compilation_cache_dir = "compilation_cache"
  # A resumed run stops if its config differs from its checkpoint's in keys
  # that change what it computes (spg_jax.training.resume_check). These
  # comma-separated keys or key prefixes may differ all the same, e.g.
  # 'schedule.joint' to lengthen the joint phase.
  config.resume_allow_changes = ""

  apply_variant(config, variant)
  return config


def phase_schedule(
    steps: int,
    decay_steps: int,
    learning_rate: float = LEARNING_RATE,
    end_learning_rate: float = 0.0,
) -> ml_collections.ConfigDict:
  """A phase's `config.schedule` entry.

  Args:
    steps: the phase's train steps.
    decay_steps: the rate falls linearly to `end_learning_rate` over the
      phase's last `decay_steps` steps, from 1 to `steps`.
    learning_rate: the rate before the decay.
    end_learning_rate: the rate as the phase ends; 0 is pix2pixHD's (and
      the paper's) schedule.
  """
  return ml_collections.ConfigDict(
      dict(
          steps=steps,
          learning_rate=learning_rate,
          decay_steps=decay_steps,
          end_learning_rate=end_learning_rate,
      )
  )


def steps_for_epochs(
    epochs: float, num_examples: int, batch_size: int
) -> int:
  """Steps that show a network `epochs` passes over `num_examples` examples."""
  return math.ceil(epochs * num_examples / batch_size)


def set_epoch_schedule(
    config: ml_collections.ConfigDict,
    num_train_examples: int,
    *,
    network_epochs: float,
    network_decay_epochs: float,
    joint_epochs: float,
    joint_decay_epochs: float,
) -> None:
  """Sets each phase's steps and decay_steps from epochs at the batch size.

  The sp and sg phases each run `network_epochs` epochs, the rate decaying
  over the last `network_decay_epochs` of them (the paper: 200 and 100),
  and so does the seg phase (our choice: the paper takes a trained
  DeepLabv3+);
  the joint phase runs `joint_epochs`, decaying over the last
  `joint_decay_epochs`. Learning rates are left as they are. A batch size
  given on the command line does not rescale these steps: set the phases'
  steps and decay_steps too, or edit the config file.
  """

  def to_steps(epochs):
    return steps_for_epochs(epochs, num_train_examples, config.batch_size)

  for phase in ("seg", "sp", "sg"):
    config.schedule[phase].steps = to_steps(network_epochs)
    config.schedule[phase].decay_steps = to_steps(network_decay_epochs)
  config.schedule.joint.steps = to_steps(joint_epochs)
  config.schedule.joint.decay_steps = to_steps(joint_decay_epochs)


# SG-Net's LPIPS weight in the paper configs (ours; see
# set_paper_pretrained_networks).
PAPER_LPIPS_WEIGHT = 10.0


def set_paper_schedule(
    config: ml_collections.ConfigDict, num_train_examples: int
) -> None:
  """Sets the paper's schedule for a dataset of `num_train_examples`.

  The paper: 200 epochs per network, the rate decaying over the last 100
  (pix2pixHD's schedule), then 100 epochs jointly. The joint phase's rate
  is ours, as the paper does not give it: pix2pixHD's schedule again, from
  the same peak, decaying over the last half.
  """
  set_epoch_schedule(
      config,
      num_train_examples,
      network_epochs=200,
      network_decay_epochs=100,
      joint_epochs=100,
      joint_decay_epochs=50,
  )


def set_paper_pretrained_networks(config: ml_collections.ConfigDict) -> None:
  """The ImageNet networks the paper trains with.

  SG-Net's perceptual loss, LPIPS v0.1 on AlexNet, at weight 10 (ours; the
  paper does not give it: pix2pixHD's weight of its VGG loss, and ours of
  discriminator feature matching), and the segmenter's ResNet-50 backbone
  started from ImageNet, as DeepLabv3+'s is. Training needs their converted
  weights: `spg-weights --names=lpips,resnet50`.
  """
  config.loss.lpips_weight = PAPER_LPIPS_WEIGHT
  config.model.segmenter.backbone_weights = "imagenet"


def with_segmenter(
    config: ml_collections.ConfigDict, steps: int = 2
) -> ml_collections.ConfigDict:
  """Gives `config` a segmenter phase of `steps` steps, SP-Net reading its
  labels; returns `config`. For the tiny variant, which has none."""
  config.schedule.seg.steps = steps
  config.schedule.seg.decay_steps = max(1, steps // 2)
  config.known_labels = "segmenter"
  return config


def apply_variant(
    config: ml_collections.ConfigDict, variant: str | None
) -> None:
  """Applies the variant named after a config file's colon, if any.

  Raises:
    ValueError: `variant` is not a known variant.
  """
  if variant == "tiny":
    _shrink_to_tiny(config)
  elif variant:
    raise ValueError(
        f"Unknown config variant {variant!r}; the only one is 'tiny'."
    )


def _shrink_to_tiny(config: ml_collections.ConfigDict) -> None:
  """Shrinks a config in place to a seconds-long run of the same pipeline."""
  for generator in (config.model.sp_generator, config.model.sg_generator):
    generator.base_features = 4
    generator.num_downsamplings = 2
    generator.num_blocks = 1
  config.model.discriminator.base_features = 4
  config.model.discriminator.num_layers = 2
  # A tiny backbone takes no ImageNet ResNet-50.
  config.model.segmenter.backbone_weights = ""
  config.model.segmenter.update(
      dict(
          stage_sizes=(1, 1, 1, 1),
          base_features=4,
          aspp_features=8,
          low_level_features=4,
          decoder_features=8,
          norm_groups=2,
      )
  )
  config.data.image_size = min(config.data.image_size, 32)
  for phase in config.schedule.values():
    phase.steps = 2
    phase.decay_steps = 1
  # No segmenter, so that a smoke run compiles three steps, not four; the
  # tests that cover the segmenter turn it back on (with_segmenter).
  config.schedule.seg.steps = 0
  config.known_labels = "ground_truth"
  config.batch_size = 4
  config.eval.batch_size = 4
  config.log_every_steps = 2
  config.sample_every_steps = 3
  config.num_samples = 2
  config.checkpoint_every_steps = 3
  config.eval_every_steps = 0
