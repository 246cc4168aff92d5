r"""SPG-Net's networks, losses and train step in PyTorch, to measure against.

A measuring instrument, not part of spg_jax (which does not depend on
PyTorch): the same config file builds the same networks as
`spg_jax.models` (channels, kernels, strides, reflection padding, instance
norm without affine parameters, the same biases), the same losses (LSGAN or
the others, discriminator feature matching, hole cross-entropy, L1 on hole
and known region) and the same three phases of a train step with Adam, and
times them the way `python -m spg_jax.benchmarking.benchmark` does, printing the same
JSON keys. It runs the fast PyTorch recipe: `torch.compile`, bfloat16
autocast when the config's dtype is bfloat16, channels-last tensors, fused
Adam, and discriminator weights frozen while a generator steps.

  python -m benchmarks.torch_reference --config=configs/synthetic.py \
      --mode=train
  python -m benchmarks.torch_reference --config=configs/default.py --mode=infer

`benchmarks/compare_torch.py` runs this and the JAX benchmark on the same
config and prints the ratio. Differences that remain: the twin ignores
`config.model.remat` and the generators' `output_conv_form` (it never
recomputes and runs its convolutions as they are, so its JSON says 'none'
and 'direct'); torch's 'SAME' padding for the stride-2 3x3 convolutions is
symmetric (1, 1) where XLA's is (0, 1), which changes no shape and no FLOP;
FLOPs are counted by `torch.utils.flop_counter`, convolutions and matmuls
only as on the JAX side (`spg_jax.benchmarking.flop_count`), though it also counts kernel
taps on padding.
"""

from collections.abc import Sequence
import json
import os
import platform
import resource
import statistics
import time
from typing import Any

from absl import app
from absl import flags
import ml_collections
from ml_collections import config_flags
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils import flop_counter

from spg_jax.benchmarking import device_peaks
from spg_jax.data import classes
from spg_jax.runtime import atomic_files

_PHASES = ("sp", "sg", "joint")
_LEAK = 0.2
_NORM_EPS = 1e-6  # flax.linen.InstanceNorm's epsilon


def _norm(kind: str, features: int) -> nn.Module:
  if kind == "instance":
    return nn.InstanceNorm2d(features, eps=_NORM_EPS, affine=False)
  return nn.Identity()


def _reflect_conv(
    in_features: int,
    out_features: int,
    kernel: int,
    dilation: int = 1,
    bias: bool = True,
) -> nn.Sequential:
  return nn.Sequential(
      nn.ReflectionPad2d(dilation * (kernel // 2)),
      nn.Conv2d(
          in_features, out_features, kernel, dilation=dilation, bias=bias
      ),
  )


class _ResidualBlock(nn.Module):

  def __init__(self, features: int, norm: str, dilation: int):
    super().__init__()
    bias = norm == "none"
    self.body = nn.Sequential(
        _reflect_conv(features, features, 3, dilation, bias),
        _norm(norm, features),
        nn.ReLU(),
        _reflect_conv(features, features, 3, bias=bias),
        _norm(norm, features),
    )

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    return x + self.body(x)


class GlobalGenerator(nn.Module):
  """pix2pixHD's global generator, as `spg_jax.models.generators`."""

  def __init__(
      self,
      in_features: int,
      out_features: int,
      config: ml_collections.ConfigDict,
  ):
    super().__init__()
    norm, bias = config.norm, config.norm == "none"
    features = config.base_features
    layers = [
        _reflect_conv(in_features, features, 7, bias=bias),
        _norm(norm, features),
        nn.ReLU(),
    ]
    for _ in range(config.num_downsamplings):
      layers += [
          nn.Conv2d(features, 2 * features, 3, stride=2, padding=1, bias=bias),
          _norm(norm, 2 * features),
          nn.ReLU(),
      ]
      features *= 2
    layers += [
        _ResidualBlock(features, norm, config.dilation)
        for _ in range(config.num_blocks)
    ]
    for _ in range(config.num_downsamplings):
      if config.upsampling == "transpose":
        layers.append(
            nn.ConvTranspose2d(
                features,
                features // 2,
                3,
                stride=2,
                padding=1,
                output_padding=1,
                bias=bias,
            )
        )
      else:
        layers += [
            nn.Upsample(scale_factor=2, mode="nearest"),
            _reflect_conv(features, features // 2, 3, bias=bias),
        ]
      features //= 2
      layers += [_norm(norm, features), nn.ReLU()]
    layers.append(_reflect_conv(features, out_features, 7))
    self.layers = nn.Sequential(*layers)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    return self.layers(x).float()


class _PatchDiscriminator(nn.Module):

  def __init__(self, in_features: int, config: ml_collections.ConfigDict):
    super().__init__()
    width = config.base_features
    self.blocks = nn.ModuleList(
        [
            nn.Sequential(
                nn.Conv2d(in_features, width, 4, stride=2, padding=1),
                nn.LeakyReLU(_LEAK),
            )
        ]
    )
    for index in range(1, config.num_layers + 1):
      next_width = config.base_features * min(2**index, 8)
      stride = 2 if index < config.num_layers else 1
      # 'SAME' for a 4x4 kernel: (1, 1) at stride 2, (1, 2) at stride 1.
      padding = nn.ZeroPad2d(1 if stride == 2 else (1, 2, 1, 2))
      self.blocks.append(
          nn.Sequential(
              padding,
              nn.Conv2d(
                  width,
                  next_width,
                  4,
                  stride=stride,
                  bias=config.norm == "none",
              ),
              _norm(config.norm, next_width),
              nn.LeakyReLU(_LEAK),
          )
      )
      width = next_width
    self.blocks.append(
        nn.Sequential(nn.ZeroPad2d((1, 2, 1, 2)), nn.Conv2d(width, 1, 4))
    )

  def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
    features = []
    for block in self.blocks:
      x = block(x)
      features.append(x.float())
    return features


class MultiScaleDiscriminator(nn.Module):
  """PatchGANs on the input and on its successive 2x downsamplings."""

  def __init__(self, in_features: int, config: ml_collections.ConfigDict):
    super().__init__()
    self.scales = nn.ModuleList(
        [
            _PatchDiscriminator(in_features, config)
            for _ in range(config.num_scales)
        ]
    )

  def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
    outputs = []
    for index, discriminator in enumerate(self.scales):
      if index:
        x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
      outputs.append(discriminator(x))
    return outputs


def _gan_terms(kind: str, logits: torch.Tensor, real: bool) -> torch.Tensor:
  """A discriminator's loss on one scale's logits of real or fake input.

  As `spg_jax.training.losses.discriminator_loss` computes it.
  """
  if kind == "lsgan":
    return torch.mean((logits - (1.0 if real else 0.0)) ** 2)
  if kind == "hinge":
    return torch.mean(F.relu(1.0 - logits if real else 1.0 + logits))
  if kind == "nonsaturating":
    return torch.mean(F.softplus(-logits if real else logits))
  raise ValueError(f"Unknown GAN loss {kind!r}.")


def _generator_gan_term(kind: str, logits: torch.Tensor) -> torch.Tensor:
  """The generator's loss on one scale's logits of its fakes.

  As `spg_jax.training.losses.generator_gan_loss` computes it: hinge's generator
  raises the logits rather than pushing them past a margin.
  """
  if kind == "hinge":
    return -torch.mean(logits)
  return _gan_terms(kind, logits, real=True)


def _mean(values: Sequence[torch.Tensor]) -> torch.Tensor:
  return sum(values) / len(values)


def _masked_mean(values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
  weights = weights.expand_as(values)
  return torch.sum(values * weights) / torch.clamp(torch.sum(weights), min=1.0)


class SPGTwin(nn.Module):
  """The four networks and the losses of one SPG-Net train step."""

  def __init__(self, config: ml_collections.ConfigDict):
    super().__init__()
    self.num_classes = classes.get_class_table(config.data.classes).num_classes
    inputs = 3 + self.num_classes + 1
    self.sp = GlobalGenerator(
        inputs, self.num_classes, config.model.sp_generator
    )
    self.sg = GlobalGenerator(inputs, 3, config.model.sg_generator)
    self.sp_disc = MultiScaleDiscriminator(inputs, config.model.discriminator)
    self.sg_disc = MultiScaleDiscriminator(inputs, config.model.discriminator)
    self.loss = config.loss

  def one_hot(self, labels: torch.Tensor) -> torch.Tensor:
    """[B, H, W] class ids -> [B, classes, H, W] one-hot, channels-last."""
    one_hot = F.one_hot(labels.long(), self.num_classes).float()
    return one_hot.permute(0, 3, 1, 2).contiguous(
        memory_format=torch.channels_last
    )

  def predict_labels(self, image, known, mask):
    """SP-Net: logits, and probabilities composited with the known labels."""
    logits = self.sp(
        torch.cat([image * (1 - mask), known * (1 - mask), mask], 1)
    )
    return logits, torch.where(mask > 0, torch.softmax(logits, 1), known)

  def render(self, image, labels, mask):
    """SG-Net: the generated image, and it composited with the known one."""
    generated = torch.tanh(
        self.sg(torch.cat([image * (1 - mask), labels, mask], 1))
    )
    return generated, torch.where(mask > 0, generated, image)

  def _adversarial(self, disc, fake_input, real_input):
    fake = disc(fake_input)
    with torch.no_grad():
      real = disc(real_input)
    gan = _mean([_generator_gan_term(self.loss.gan, f[-1]) for f in fake])
    matching = _mean(
        [
            _mean(
                [torch.mean(torch.abs(a - b)) for a, b in zip(fs[:-1], rs[:-1])]
            )
            for fs, rs in zip(fake, real)
        ]
    )
    return (
        self.loss.gan_weight * gan
        + self.loss.feature_matching_weight * matching
    )

  def sp_loss(self, batch):
    """SP-Net's loss and its straight-through completed one-hot labels."""
    image, mask, labels = batch["image"], batch["mask"], batch["label"]
    known = self.one_hot(labels)
    logits, probabilities = self.predict_labels(image, known, mask)
    hard = F.one_hot(probabilities.argmax(1), self.num_classes).permute(
        0, 3, 1, 2
    )
    straight = probabilities + (hard.float() - probabilities).detach()
    completed = torch.where(mask > 0, straight, known)
    corrupted = image * (1 - mask)
    cross_entropy = _masked_mean(
        F.cross_entropy(logits, labels.long(), reduction="none"), mask[:, 0]
    )
    loss = self.loss.cross_entropy_weight * cross_entropy + self._adversarial(
        self.sp_disc,
        torch.cat([corrupted, mask, completed], 1),
        torch.cat([corrupted, mask, known], 1),
    )
    return loss, completed

  def sg_loss(self, batch, labels):
    """SG-Net's loss rendering from `labels`, and its composited output."""
    image, mask = batch["image"], batch["mask"]
    generated, output = self.render(image, labels, mask)
    error = torch.abs(generated - image)
    loss = (
        self.loss.l1_hole_weight * _masked_mean(error, mask)
        + self.loss.l1_known_weight * _masked_mean(error, 1 - mask)
        + self._adversarial(
            self.sg_disc,
            torch.cat([labels, mask, output], 1),
            torch.cat([self.one_hot(batch["label"]), mask, image], 1),
        )
    )
    return loss, output

  def disc_loss(self, disc, real_input, fake_input):
    """A discriminator's loss on real and (detached) fake input."""
    real = disc(real_input)
    fake = disc(fake_input.detach())
    return _mean(
        [_gan_terms(self.loss.gan, r[-1], True) for r in real]
    ) + _mean([_gan_terms(self.loss.gan, f[-1], False) for f in fake])


class Trainer:
  """One phase's step: generators, then discriminators, each with Adam."""

  def __init__(self, config: ml_collections.ConfigDict, device: torch.device):
    self.model = SPGTwin(config).to(device, memory_format=torch.channels_last)
    self.autocast = torch.autocast(
        device.type, torch.bfloat16, enabled=config.dtype == "bfloat16"
    )
    # Each network steps at the peak rate of the first phase that trains it
    # (sp or sg), as a fresh JAX train state does: the twin times steps, it
    # does not follow the schedule.
    self.optimizers = {
        name: torch.optim.Adam(
            getattr(self.model, name).parameters(),
            lr=config.schedule[name.removesuffix("_disc")].learning_rate,
            betas=(config.optimizer.b1, config.optimizer.b2),
            fused=True,
        )
        for name in ("sp", "sg", "sp_disc", "sg_disc")
    }
    self.compiled_phases = {
        phase: torch.compile(getattr(self, f"_{phase}_losses"))
        for phase in _PHASES
    }
    self.eager_phases = {
        phase: getattr(self, f"_{phase}_losses") for phase in _PHASES
    }
    self.compiled_disc_losses = torch.compile(self._disc_step_losses)

  def _discriminator_losses(
      self, batch, sp_completed=None, sg_labels=None, output=None
  ):
    model, mask, image = self.model, batch["mask"], batch["image"]
    losses = []
    known = model.one_hot(batch["label"])
    if sp_completed is not None:
      corrupted = image * (1 - mask)
      losses.append(
          model.disc_loss(
              model.sp_disc,
              torch.cat([corrupted, mask, known], 1),
              torch.cat([corrupted, mask, sp_completed], 1),
          )
      )
    if output is not None:
      losses.append(
          model.disc_loss(
              model.sg_disc,
              torch.cat([known, mask, image], 1),
              torch.cat([sg_labels.detach(), mask, output], 1),
          )
      )
    return sum(losses)

  def _sp_losses(self, batch):
    with self.autocast:
      loss, completed = self.model.sp_loss(batch)
    return loss, completed, None, None

  def _sg_losses(self, batch):
    with self.autocast:
      labels = self.model.one_hot(batch["label"])
      loss, output = self.model.sg_loss(batch, labels)
    return loss, None, labels, output

  def _joint_losses(self, batch):
    with self.autocast:
      sp_loss, completed = self.model.sp_loss(batch)
      sg_loss, output = self.model.sg_loss(batch, completed)
    return sp_loss + sg_loss, completed, completed, output

  def _disc_step_losses(self, batch, completed, labels, output):
    with self.autocast:
      return self._discriminator_losses(
          batch,
          None if completed is None else completed.detach(),
          labels,
          None if output is None else output.detach(),
      )

  def step(
      self, phase: str, batch: dict[str, torch.Tensor], compiled: bool = True
  ):
    """One train step of `phase`; returns the generators' loss."""
    generators = {"sp": ["sp"], "sg": ["sg"], "joint": ["sp", "sg"]}[phase]
    discriminators = [f"{name}_disc" for name in generators]
    losses = (self.compiled_phases if compiled else self.eager_phases)[phase]
    for name in discriminators:
      getattr(self.model, name).requires_grad_(False)
    loss, completed, labels, output = losses(batch)
    loss.backward()
    for name in generators:
      self.optimizers[name].step()
      self.optimizers[name].zero_grad(set_to_none=True)
    for name in discriminators:
      getattr(self.model, name).requires_grad_(True)
    disc_losses = (
        self.compiled_disc_losses if compiled else self._disc_step_losses
    )
    disc_loss = disc_losses(batch, completed, labels, output)
    disc_loss.backward()
    for name in discriminators:
      self.optimizers[name].step()
      self.optimizers[name].zero_grad(set_to_none=True)
    return loss


def random_batch(
    batch_size, height, width, num_classes, device
) -> dict[str, torch.Tensor]:
  """Random pixels and labels and a centred hole, as spg_jax.benchmarking.benchmark's."""
  generator = torch.Generator().manual_seed(0)
  mask = torch.zeros(batch_size, 1, height, width)
  mask[:, :, height // 4 : 3 * height // 4, width // 4 : 3 * width // 4] = 1.0
  channels_last = torch.channels_last
  return {
      "image": (
          torch.rand(batch_size, 3, height, width, generator=generator) * 2 - 1
      )
      .to(device)
      .contiguous(memory_format=channels_last),
      "label": torch.randint(
          0, num_classes, (batch_size, height, width), generator=generator
      ).to(device),
      "mask": mask.to(device).contiguous(memory_format=channels_last),
  }


def _synchronize(device: torch.device) -> None:
  if device.type == "cuda":
    torch.cuda.synchronize(device)


def _median_call_seconds(call, device, warmup, windows, window_calls) -> float:
  for _ in range(warmup):
    call()
  _synchronize(device)
  means = []
  for _ in range(windows):
    start = time.perf_counter()
    for _ in range(window_calls):
      call()
    _synchronize(device)
    means.append((time.perf_counter() - start) / window_calls)
  return statistics.median(means)


def _first_call_seconds(call, device) -> float:
  start = time.perf_counter()
  call()
  _synchronize(device)
  return time.perf_counter() - start


def _counted_flops(call) -> float:
  counter = flop_counter.FlopCounterMode(display=False)
  with counter:
    call()
  return float(counter.get_total_flops())


def _peak(device: torch.device, dtype: str) -> tuple[float | None, str]:
  """Peak FLOP/s and its source, as `spg_jax.benchmarking.profiling.peak_flops` has it:
  a GPU's from the table (None if missing), a CPU's measured."""
  if device.type == "cuda":
    peak = device_peaks.table_peak_flops(
        torch.cuda.get_device_name(device), dtype
    )
    if peak is None:
      return None, device_peaks.UNKNOWN_PEAK_SOURCE
    return peak, "vendor peak (spg_jax.benchmarking.device_peaks)"
  size = device_peaks.CPU_PEAK_MATMUL_SIZE
  a = torch.ones(size, size, device=device, dtype=getattr(torch, dtype))
  a @ a  # pylint: disable=pointless-statement
  best = float("inf")
  for _ in range(device_peaks.CPU_PEAK_REPEATS):
    start = time.perf_counter()
    a @ a  # pylint: disable=pointless-statement
    best = min(best, time.perf_counter() - start)
  return 2 * size**3 / best, f"measured: {size}x{size} {dtype} matmul"


def _forget_peak_memory(device: torch.device) -> None:
  """Starts the GPU's peak over, so that it covers only what follows (the
  eager step that counts FLOPs allocates more than the compiled one)."""
  if device.type == "cuda":
    torch.cuda.reset_peak_memory_stats(device)


def _peak_memory(device: torch.device) -> tuple[int, str]:
  """The GPU's peak allocation since `_forget_peak_memory`, or on a CPU the
  process's peak resident memory, libraries included (not comparable with
  JAX's buffer assignment)."""
  if device.type == "cuda":
    return (
        torch.cuda.max_memory_allocated(device),
        "torch.cuda.max_memory_allocated",
    )
  kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
  return kib * 1024, "process peak resident memory (ru_maxrss)"


def _environment(device: torch.device, config) -> dict[str, Any]:
  return {
      "device": torch.cuda.get_device_name(device)
      if device.type == "cuda"
      else "cpu",
      "platform": device.type,
      "device_count": 1,
      "dtype": config.dtype,
      # Whatever config.model.remat says, the twin keeps every activation:
      # rematerialisation could only add work to its step.
      "remat": "none",
      # Nor does it fold its convolutions: oneDNN and cuDNN run them as
      # they are.
      "output_conv_forms": {"sp": "direct", "sg": "direct"},
      # Its transposed convolutions are torch's own.
      "upsampling_forms": {"sp": "direct", "sg": "direct"},
      "host": platform.node(),
      "cpu_cores": len(os.sched_getaffinity(0)),
      "torch_threads": torch.get_num_threads(),
      "versions": {"torch": torch.__version__},
  }


def measure_train(
    config: ml_collections.ConfigDict,
    phase: str,
    warmup: int,
    windows: int,
    window_calls: int,
) -> dict[str, Any]:
  """Times `phase`'s step as `spg_jax.benchmarking.benchmark.measure_train` does."""
  device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
  trainer = Trainer(config, device)
  size = config.data.image_size
  batch = random_batch(
      config.batch_size, size, size, trainer.model.num_classes, device
  )
  flops = _counted_flops(lambda: trainer.step(phase, batch, compiled=False))
  _forget_peak_memory(device)
  compile_s = _first_call_seconds(lambda: trainer.step(phase, batch), device)
  seconds = _median_call_seconds(
      lambda: trainer.step(phase, batch), device, warmup, windows, window_calls
  )
  memory, memory_source = _peak_memory(device)
  return {
      "mode": "train",
      "phase": phase,
      "image_size": size,
      "global_batch": config.batch_size,
      **device_peaks.step_figures(
          flops,
          seconds,
          config.batch_size,
          _peak(device, config.dtype),
          compile_s,
      ),
      "compile_note": "first step, compilation included",
      "peak_memory_bytes": memory,
      "peak_memory_source": memory_source,
      "timing": f"median of {windows} windows of {window_calls} steps",
      **_environment(device, config),
  }


def measure_infer(
    config: ml_collections.ConfigDict,
    sizes: Sequence[tuple[int, int]],
    batch_sizes: Sequence[int],
    warmup: int,
    windows: int,
    window_calls: int,
) -> dict[str, Any]:
  """Times SP-Net then SG-Net as `spg_jax.benchmarking.benchmark.measure_infer` does."""
  device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
  model = SPGTwin(config).to(device, memory_format=torch.channels_last).eval()
  autocast = torch.autocast(
      device.type, torch.bfloat16, enabled=config.dtype == "bfloat16"
  )

  def complete(batch):
    with torch.inference_mode(), autocast:
      _, probabilities = model.predict_labels(
          batch["image"], model.one_hot(batch["label"]), batch["mask"]
      )
      return model.render(
          batch["image"], model.one_hot(probabilities.argmax(1)), batch["mask"]
      )[1]

  # Specialised to each shape, as JAX compiles one program per shape: a
  # dynamic-shape program, which torch.compile makes once a second shape
  # comes, would be timed against JAX's specialised ones.
  compiled = torch.compile(complete, dynamic=False)
  peak = _peak(device, config.dtype)
  memory = []

  def run(batch_size, height, width):
    batch = random_batch(batch_size, height, width, model.num_classes, device)
    flops = _counted_flops(lambda: complete(batch))
    _forget_peak_memory(device)
    compile_s = _first_call_seconds(lambda: compiled(batch), device)
    seconds = _median_call_seconds(
        lambda: compiled(batch), device, warmup, windows, window_calls
    )
    memory.append(_peak_memory(device))
    return device_peaks.step_figures(
        flops, seconds, batch_size, peak, compile_s
    )

  latency = {f"{h}x{w}": run(1, h, w) for h, w in sizes}
  throughput = {str(b): run(b, *sizes[0]) for b in batch_sizes}
  best = max(throughput, key=lambda b: throughput[b]["images_per_sec"])
  first = latency[f"{sizes[0][0]}x{sizes[0][1]}"]
  memory, memory_source = max(memory)
  return {
      "mode": "infer",
      "step_time_ms": first["step_time_ms"],
      "compile_s": first["compile_s"],
      "images_per_sec": throughput[best]["images_per_sec"],
      "best_batch": int(best),
      "tflops_per_sec": throughput[best]["tflops_per_sec"],
      "mfu": throughput[best]["mfu"],
      "compile_note": "first call at batch 1, compilation included",
      "peak_memory_bytes": memory,
      "peak_memory_source": memory_source,
      "latency_batch_1": latency,
      "throughput": throughput,
      "timing": f"median of {windows} windows of {window_calls} calls",
      **_environment(device, config),
  }


_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Training config file."
)
_MODE = flags.DEFINE_enum(
    "mode", "train", ["train", "infer"], "What to measure."
)
_PHASE = flags.DEFINE_enum("phase", "joint", _PHASES, "train: the phase timed.")
_JSON = flags.DEFINE_string("json", None, "Also write the results here.")
_WARMUP = flags.DEFINE_integer("warmup", 3, "Calls before timing.")
_WINDOWS = flags.DEFINE_integer(
    "windows", 5, "Timed windows (median reported)."
)
_WINDOW_CALLS = flags.DEFINE_integer("window_calls", 5, "Calls per window.")
_INFER_SIZES = flags.DEFINE_list(
    "infer_sizes", ["256x256", "1024x2048"], "infer: sizes."
)
_INFER_BATCHES = flags.DEFINE_list(
    "infer_batches", ["1", "8", "32"], "infer: batches."
)


def main(argv: Sequence[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  config = _CONFIG.value
  timing = (_WARMUP.value, _WINDOWS.value, _WINDOW_CALLS.value)
  if _MODE.value == "train":
    results = measure_train(config, _PHASE.value, *timing)
  else:
    sizes = [
        tuple(int(n) for n in text.split("x")) for text in _INFER_SIZES.value
    ]
    batches = [int(text) for text in _INFER_BATCHES.value]
    results = measure_infer(config, sizes, batches, *timing)
  text = json.dumps(results, indent=2)
  print(text)
  if _JSON.value:
    atomic_files.write_text(_JSON.value, text + "\n")


if __name__ == "__main__":
  flags.mark_flags_as_required(["config"])
  app.run(main)
