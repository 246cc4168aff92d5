"""Tests of the output-convolution timer: it builds the generators' output
convolutions, and times the same work in both forms."""

import numpy as np

from benchmarks import output_conv
from configs import synthetic
from spg_jax.data import classes


def test_builds_each_generators_output_convolution():
  config = synthetic.get_config("tiny")
  operands = output_conv.output_convolutions(config, batch_size=2)
  num_classes = classes.get_class_table(config.data.classes).num_classes
  size = config.data.image_size
  base = config.model.sp_generator.base_features
  assert operands["sp"][0].shape == (2, size + 6, size + 6, base)
  assert operands["sp"][1].shape == (7, 7, base, num_classes)
  assert operands["sp"][2].shape == (2, size, size, num_classes)
  base = config.model.sg_generator.base_features
  assert operands["sg"][0].shape == (2, size + 6, size + 6, base)
  assert operands["sg"][1].shape == (7, 7, base, 3)
  assert operands["sg"][2].shape == (2, size, size, 3)


def test_both_forms_compute_the_same_pieces():
  config = synthetic.get_config("tiny")
  operands = output_conv.output_convolutions(config, batch_size=2)
  direct = output_conv.pieces("direct")
  folded = output_conv.pieces("space_to_depth")
  assert list(direct) == list(output_conv._PIECES)
  for x, kernel, cotangent in operands.values():
    for piece in direct:
      want = direct[piece](x, kernel, cotangent)
      got = folded[piece](x, kernel, cotangent)
      assert got.shape == want.shape
      np.testing.assert_allclose(
          got, want, atol=1e-5 * float(np.abs(want).max()), err_msg=piece
      )
