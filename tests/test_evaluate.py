"""Tests of evaluation: its baselines by hand, and refusing an empty split."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import synthetic
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
  return config, networks, params, mesh


def test_a_split_without_batches_is_refused(tiny_evaluation):
  _, networks, params, mesh = tiny_evaluation
  with pytest.raises(ValueError, match="evaluation split has no examples"):
    evaluate.evaluate(evaluate.make_eval_step(networks), params, [], mesh)


def test_a_split_of_padding_alone_is_refused(tiny_evaluation):
  """Examples of weight 0 pad the last batch; a split of nothing else would
  otherwise give NaN metrics."""
  config, networks, params, mesh = tiny_evaluation
  size, batch_size = config.data.image_size, config.eval.batch_size
  padding = {
      "image": np.zeros([batch_size, size, size, 3], np.float32),
      "label": np.zeros([batch_size, size, size], np.int32),
      "mask": np.ones([batch_size, size, size, 1], np.float32),
      "weight": np.zeros([batch_size], np.float32),
  }
  with pytest.raises(ValueError, match="evaluation split has no examples"):
    evaluate.evaluate(
        evaluate.make_eval_step(networks), params, [padding], mesh
    )
