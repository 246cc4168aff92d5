"""SPG-Net's training state and data-parallel train steps (no TensorFlow).

Training runs in four phases (`spg_jax.training.schedules`): 'seg' trains
the segmenter, if the run has one, to label the known region of corrupted
images; 'sp' trains SP-Net and its discriminator alone; 'sg' trains SG-Net and
its discriminator alone on ground-truth labels; 'joint' trains SP-Net, SG-Net
and their discriminators, SG-Net rendering from SP-Net's completed labels so
that its loss also reaches SP-Net. SP-Net's known-region labels come from
the run's source (`config.known_labels`): the ground truth, or the trained
segmenter.

Each step is written for one device's share of the batch, with gradients and
metrics averaged over the mesh axis 'batch' by `lax.pmean` (the pmap
programming model), and compiled by `jax.jit(jax.shard_map(...))` over a mesh
of all devices, the state donated. The state is a replicated global
`jax.Array` pytree, which Orbax saves as it is.
"""

from collections.abc import Callable, Mapping
from typing import Any

import flax
from flax.training import train_state
import jax
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P
import jax.numpy as jnp
import ml_collections
import optax

from spg_jax.models import generators
from spg_jax.models import segmenter
from spg_jax.models import spg
from spg_jax.pretrained import converted
from spg_jax.runtime import sharding
from spg_jax.training import losses
from spg_jax.training import perceptual
from spg_jax.training import schedules

# The metric that is 1.0 for a step whose losses or updated parameters were
# not finite, whose update was therefore not applied.
NONFINITE = "nonfinite"

# The networks each phase's step updates (the fields of SPGState), read off
# the schedule's table of the phases that update each network.
UPDATED_NETWORKS = {
    phase: tuple(
        network
        for network, phases in schedules.NETWORK_PHASES.items()
        if phase in phases
    )
    for phase in schedules.PHASES
}

# The value of config.model.segmenter.backbone_weights that names the
# weights cache's converted ResNet-50.
IMAGENET_BACKBONE = "imagenet"

Batch = Mapping[str, jax.Array]
Metrics = dict[str, jax.Array]
# The frozen pretrained networks' parameters, by perceptual term.
Frozen = Mapping[str, Any]
PerDeviceStepFn = Callable[
    ["SPGState", Batch, Frozen], tuple["SPGState", Metrics]
]


@flax.struct.dataclass
class SPGState:
  """Everything training changes: the step and each network's state."""

  step: jax.Array
  sp: train_state.TrainState
  sg: train_state.TrainState
  sp_disc: train_state.TrainState
  sg_disc: train_state.TrainState
  # The segmenter's, None in a run without one.
  seg: train_state.TrainState | None = None

  @property
  def params(self) -> dict[str, Any]:
    params = {
        "sp": self.sp.params,
        "sg": self.sg.params,
        "sp_disc": self.sp_disc.params,
        "sg_disc": self.sg_disc.params,
    }
    if self.seg is not None:
      params["seg"] = self.seg.params
    return params


def load_backbone(config: ml_collections.ConfigDict) -> dict | None:
  """The converted ImageNet ResNet-50 the segmenter's backbone starts from
  (`config.model.segmenter.backbone_weights`: 'imagenet' for the weights
  cache's, or a converted file's path), or None for a run whose segmenter
  starts from scratch, or that has none.

  Raises:
    published.WeightsUnavailableError, conversion.WeightsError: as
      `converted.load`.
  """
  if not (spg.has_segmenter(config)
          and segmenter.uses_pretrained_backbone(config.model.segmenter)):
    return None
  path = config.model.segmenter.backbone_weights
  return converted.load("resnet50", "" if path == IMAGENET_BACKBONE else path)


def create_train_state(
    config: ml_collections.ConfigDict,
    networks: spg.Networks,
    rng: jax.Array,
    backbone: dict | None = None,
) -> SPGState:
  """Initialises the parameters and an Adam optimizer for each network.

  A segmenter configured to start from ImageNet gets `backbone`
  (`load_backbone`'s; loaded here if None) as its backbone's parameters.
  """
  params = networks.init(rng, config.data.image_size)
  if networks.seg is not None and segmenter.uses_pretrained_backbone(
      config.model.segmenter):
    params["seg"] = segmenter.with_backbone(
        params["seg"], load_backbone(config) if backbone is None else backbone
    )
  apply_fns = {
      name: getattr(networks, name).apply for name in params
  }
  # Steps as int32 arrays, not flax's Python 0: a weakly typed step would
  # trace the train step differently from one restored from a checkpoint,
  # so a resumed run could not reuse the compiled program.
  states = {
      name: train_state.TrainState.create(
          apply_fn=apply_fns[name],
          params=params[name],
          tx=optax.adam(
              schedule, b1=config.optimizer.b1, b2=config.optimizer.b2
          ),
      ).replace(step=jnp.zeros([], jnp.int32))
      for name, schedule in schedules.learning_rate_schedules(
          config.schedule
      ).items()
      if name in params
  }
  return SPGState(step=jnp.zeros([], jnp.int32), **states)


class _StepBuilder:
  """Writes the per-device update of each phase from a config's parts."""

  def __init__(self, config: ml_collections.ConfigDict, networks: spg.Networks):
    self.networks = networks
    self.loss_config = config.loss
    self.excluded_class = losses.excluded_cross_entropy_class(
        config.loss, config.data.classes
    )
    self.schedules = schedules.learning_rate_schedules(config.schedule)

  def _known_and_real_labels(self, state, batch):
    """SP-Net's one-hot known labels, and the real map its discriminator sees.

    The real map is the true labels in the hole and the known labels
    outside, so that real and predicted maps differ only in the hole, as
    the known labels are SP-Net's input, not its output.
    """
    networks = self.networks
    known = networks.known_label_map(
        state.params, batch["image"], batch["mask"], batch["label"]
    )
    real = generators.composite_labels(
        networks.one_hot(batch["label"]), known, batch["mask"]
    )
    return known, real

  def _sp_generator_loss(self, sp_params, disc_params, batch, known, real):
    """SP-Net's loss; returns it, metrics and the completed label map.

    The discriminator sees the predicted map as a straight-through one-hot,
    composited with the known labels (see
    `generators.straight_through_one_hot`).
    """
    networks = self.networks
    logits, probabilities = networks.predict_labels(
        sp_params, batch["image"], known, batch["mask"]
    )
    completed = generators.composite_labels(
        generators.straight_through_one_hot(probabilities),
        known,
        batch["mask"],
    )
    fake = networks.sp_disc.apply(
        disc_params, spg.sp_disc_input(batch["image"], batch["mask"], completed)
    )
    real = networks.sp_disc.apply(
        disc_params, spg.sp_disc_input(batch["image"], batch["mask"], real)
    )
    loss, metrics = losses.sp_generator_loss(
        logits,
        batch["label"],
        batch["mask"],
        fake,
        real,
        self.loss_config,
        excluded_class=self.excluded_class,
        axis_name=sharding.BATCH_AXIS,
    )
    return loss, (metrics, completed)

  def _sg_generator_loss(self, sg_params, disc_params, batch, labels, frozen):
    """SG-Net's loss rendering from `labels`; returns it, metrics, output.

    `frozen` holds the perceptual networks' parameters (`perceptual.terms`).
    """
    networks = self.networks
    generated, output = networks.render(
        sg_params, batch["image"], labels, batch["mask"]
    )
    perceptual_terms = perceptual.terms(
        frozen, generated, batch["image"], self.loss_config
    )
    fake = networks.sg_disc.apply(
        disc_params, networks.sg_disc_input(labels, batch["mask"], output)
    )
    real = networks.sg_disc.apply(
        disc_params,
        networks.sg_disc_input(
            networks.one_hot(batch["label"]), batch["mask"], batch["image"]
        ),
    )
    loss, metrics = losses.sg_generator_loss(
        generated,
        batch["image"],
        batch["mask"],
        fake,
        real,
        self.loss_config,
        axis_name=sharding.BATCH_AXIS,
        perceptual_terms=perceptual_terms,
    )
    return loss, (metrics, output)

  def _update(self, name, state, grads):
    """Applies averaged gradients; returns the new state and its rate."""
    learning_rate = self.schedules[name](state.step)
    return state.apply_gradients(grads=grads), learning_rate

  def _discriminator_step(self, name, state, real_input, fake_input):
    """One update of discriminator `name` on real and (frozen) fake inputs."""
    apply_fn = getattr(self.networks, name).apply
    fake_input = jax.lax.stop_gradient(fake_input)

    def loss_fn(params):
      return losses.discriminator_loss(
          apply_fn(params, real_input),
          apply_fn(params, fake_input),
          self.loss_config.gan,
      )

    metrics, grads = _averaged_gradients(loss_fn, state.params)
    state, learning_rate = self._update(name, state, grads)
    return state, {**metrics, "learning_rate": learning_rate}

  def _train_sp(self, state, batch, sp_metrics, completed, real):
    sp_disc, disc_metrics = self._discriminator_step(
        "sp_disc",
        state.sp_disc,
        spg.sp_disc_input(batch["image"], batch["mask"], real),
        spg.sp_disc_input(batch["image"], batch["mask"], completed),
    )
    return sp_disc, _prefixed("sp", sp_metrics) | _prefixed(
        "sp_disc", disc_metrics
    )

  def _train_sg(self, state, batch, labels, sg_metrics, output):
    sg_disc, disc_metrics = self._discriminator_step(
        "sg_disc",
        state.sg_disc,
        self.networks.sg_disc_input(
            self.networks.one_hot(batch["label"]), batch["mask"], batch["image"]
        ),
        self.networks.sg_disc_input(labels, batch["mask"], output),
    )
    return sg_disc, _prefixed("sg", sg_metrics) | _prefixed(
        "sg_disc", disc_metrics
    )

  def seg_step(
      self, state: SPGState, batch: Batch, frozen: Frozen
  ) -> tuple[SPGState, Metrics]:
    """Phase 'seg': the segmenter, on the known region of corrupted images."""
    del frozen  # SG-Net's alone

    def loss_fn(seg_params):
      logits = self.networks.seg.apply(
          seg_params, batch["image"], batch["mask"]
      )
      return losses.segmenter_loss(
          logits,
          batch["label"],
          batch["mask"],
          excluded_class=self.excluded_class,
          axis_name=sharding.BATCH_AXIS,
      )

    metrics, grads = _averaged_gradients(loss_fn, state.seg.params)
    seg, metrics["learning_rate"] = self._update("seg", state.seg, grads)
    return state.replace(seg=seg), _prefixed("seg", metrics)

  def sp_step(
      self, state: SPGState, batch: Batch, frozen: Frozen
  ) -> tuple[SPGState, Metrics]:
    """Phase 'sp': SP-Net and its discriminator."""
    del frozen  # SG-Net's alone
    known, real = self._known_and_real_labels(state, batch)
    (metrics, completed), grads = _averaged_gradients(
        self._sp_generator_loss,
        state.sp.params,
        state.sp_disc.params,
        batch,
        known,
        real,
    )
    sp, metrics["learning_rate"] = self._update("sp", state.sp, grads)
    sp_disc, metrics = self._train_sp(state, batch, metrics, completed, real)
    return state.replace(sp=sp, sp_disc=sp_disc), metrics

  def sg_step(
      self, state: SPGState, batch: Batch, frozen: Frozen
  ) -> tuple[SPGState, Metrics]:
    """Phase 'sg': SG-Net and its discriminator, on ground-truth labels."""
    labels = self.networks.one_hot(batch["label"])
    (metrics, output), grads = _averaged_gradients(
        self._sg_generator_loss,
        state.sg.params,
        state.sg_disc.params,
        batch,
        labels,
        frozen,
    )
    sg, metrics["learning_rate"] = self._update("sg", state.sg, grads)
    sg_disc, metrics = self._train_sg(state, batch, labels, metrics, output)
    return state.replace(sg=sg, sg_disc=sg_disc), metrics

  def joint_step(
      self, state: SPGState, batch: Batch, frozen: Frozen
  ) -> tuple[SPGState, Metrics]:
    """Phase 'joint': SG-Net renders SP-Net's labels; all four update."""
    known, real = self._known_and_real_labels(state, batch)

    def loss_fn(generator_params):
      sp_loss, (sp_metrics, completed) = self._sp_generator_loss(
          generator_params["sp"], state.sp_disc.params, batch, known, real
      )
      sg_loss, (sg_metrics, output) = self._sg_generator_loss(
          generator_params["sg"], state.sg_disc.params, batch, completed,
          frozen
      )
      true_labels_weight = self.loss_config.joint_true_labels_weight
      if true_labels_weight:
        true_labels_loss, _ = self._sg_generator_loss(
            generator_params["sg"],
            state.sg_disc.params,
            batch,
            self.networks.one_hot(batch["label"]),
            frozen,
        )
        sg_metrics["loss_true_labels"] = true_labels_loss
        sg_loss += true_labels_weight * true_labels_loss
      return sp_loss + sg_loss, (sp_metrics, sg_metrics, completed, output)

    aux, grads = _averaged_gradients(
        loss_fn, {"sp": state.sp.params, "sg": state.sg.params}
    )
    sp_metrics, sg_metrics, completed, output = aux
    sp, sp_metrics["learning_rate"] = self._update("sp", state.sp, grads["sp"])
    sg, sg_metrics["learning_rate"] = self._update("sg", state.sg, grads["sg"])
    sp_disc, sp_metrics = self._train_sp(
        state, batch, sp_metrics, completed, real
    )
    sg_disc, sg_metrics = self._train_sg(
        state, batch, jax.lax.stop_gradient(completed), sg_metrics, output
    )
    return (
        state.replace(sp=sp, sg=sg, sp_disc=sp_disc, sg_disc=sg_disc),
        sp_metrics | sg_metrics,
    )


def _all_finite(tree: Any) -> jax.Array:
  """Whether every float in `tree` is finite, as a boolean scalar."""
  checks = [jnp.all(jnp.isfinite(leaf)) for leaf in jax.tree.leaves(tree)
            if jnp.issubdtype(leaf.dtype, jnp.floating)]
  return jnp.all(jnp.stack(checks)) if checks else jnp.array(True)


def _keep_if_nonfinite(
    state: SPGState, new_state: SPGState, metrics: Metrics,
    updated: tuple[str, ...],
) -> tuple[SPGState, jax.Array]:
  """`new_state`, or `state` where a metric or a new parameter of the
  `updated` networks is not finite; and 1.0 for such a step, 0.0 for a good
  one.

  A NaN or Inf in a gradient reaches the parameters through Adam, so
  checking the losses and the updated parameters catches every non-finite
  step, on the device, with no sync. Metrics and parameters are the same on
  every device (averaged, and updated from averaged gradients), so every
  device keeps or drops the update alike. The caller decides, at its next
  read of the metrics, whether to stop (`config.on_nonfinite`).
  """
  finite = _all_finite(metrics) & _all_finite(
      [getattr(new_state, name).params for name in updated]
  )
  kept = {
      name: jax.tree.map(lambda new, old: jnp.where(finite, new, old),
                         getattr(new_state, name), getattr(state, name))
      for name in updated
  }
  return new_state.replace(**kept), 1.0 - finite.astype(jnp.float32)


def _averaged_gradients(loss_fn, params, *args):
  """Returns `loss_fn`'s aux output and its gradient averaged over devices.

  `loss_fn(params, *args)` returns `(loss, aux)` for this device's share of
  the batch. The parameters enter the step invariant over 'batch'; casting
  them to 'varying' makes `jax.grad` return this device's own gradient, which
  `lax.pmean` averages. (Without the cast, shard_map's gradient of an
  invariant input is already summed over devices.)

  That mean is the gradient of the whole batch's loss, on any number of
  devices, because each loss term's mean over devices is the term on the
  whole batch: plain means over equal shares average to the global mean, and
  masked means divide by the global weight sum (`losses.masked_mean` with
  the batch's axis), however unevenly the holes fall on the devices.
  """
  varying = jax.tree.map(
      lambda x: jax.lax.pcast(x, sharding.BATCH_AXIS, to="varying"), params
  )
  (_, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(varying, *args)
  return aux, jax.lax.pmean(grads, sharding.BATCH_AXIS)


def _prefixed(prefix: str, metrics: Metrics) -> Metrics:
  return {f"{prefix}/{key}": value for key, value in metrics.items()}


class BoundStep:
  """A compiled step with the frozen perceptual parameters bound.

  Called, and lowered, as `step(state, batch)`. The parameters reach the
  compiled program as its third argument, not as constants baked into it,
  so a 20-million-parameter VGG19 neither bloats the program nor changes
  its cache key.

  Attributes:
    jitted: the compiled function of (state, batch, frozen).
    frozen: the bound parameters, on every device.
  """

  def __init__(self, jitted: Any, frozen: Frozen):
    self.jitted = jitted
    self.frozen = frozen

  def __call__(self, state: SPGState, batch: Batch) -> tuple[SPGState, Metrics]:
    return self.jitted(state, batch, self.frozen)

  def lower(self, state: SPGState, batch: Batch) -> Any:
    return self.jitted.lower(state, batch, self.frozen)


def make_train_steps(
    config: ml_collections.ConfigDict,
    networks: spg.Networks,
    mesh: Mesh,
    frozen: Frozen | None = None,
) -> dict[str, BoundStep]:
  """Compiles one data-parallel step per phase over `mesh`, state donated.

  Args:
    config: the run's config.
    networks: its networks.
    mesh: the devices, the batch split over their 'batch' axis.
    frozen: the parameters of the enabled perceptual terms' networks
      (`perceptual.load_params`), placed here on every device of `mesh`;
      None for a config without perceptual terms.

  Raises:
    ValueError: the config enables perceptual terms whose parameters
      `frozen` lacks.
  """
  frozen = frozen or {}
  missing = [term for term in perceptual.enabled_terms(config.loss)
             if term not in frozen]
  if missing:
    raise ValueError(
        f"The config enables the perceptual terms {missing}, but their"
        " networks' parameters were not given (perceptual.load_params)."
    )
  frozen = sharding.replicate(frozen, mesh)
  builder = _StepBuilder(config, networks)
  per_device_steps = {
      "seg": builder.seg_step,
      "sp": builder.sp_step,
      "sg": builder.sg_step,
      "joint": builder.joint_step,
  }

  def data_parallel(per_device_step: PerDeviceStepFn,
                    updated: tuple[str, ...]) -> BoundStep:
    def step(state, batch, frozen):
      new_state, metrics = per_device_step(state, batch, frozen)
      metrics = jax.lax.pmean(metrics, sharding.BATCH_AXIS)
      new_state, metrics[NONFINITE] = _keep_if_nonfinite(
          state, new_state, metrics, updated
      )
      return new_state.replace(step=state.step + 1), metrics

    jitted = jax.jit(
        jax.shard_map(
            step,
            mesh=mesh,
            in_specs=(P(), P(sharding.BATCH_AXIS), P()),
            out_specs=(P(), P()),
        ),
        donate_argnums=0,
    )
    return BoundStep(jitted, frozen)

  return {
      phase: data_parallel(per_device_steps[phase], UPDATED_NETWORKS[phase])
      for phase in schedules.PHASES
      if phase != "seg" or networks.seg is not None
  }
