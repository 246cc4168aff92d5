"""Tests of the layout timer: it times the generator's convolutions, and the
same work in both layouts."""

import jax.numpy as jnp
import numpy as np

from benchmarks import conv_layouts
from configs import synthetic


def test_finds_each_kind_of_generator_convolution_once():
  config = synthetic.get_config("tiny")
  downsamplings = config.model.sp_generator.num_downsamplings
  names = list(conv_layouts.distinct_convolutions(config, config.batch_size))
  # 7x7 stem, each downsampling, the residual 3x3, four phases per
  # upsampling, 7x7 head.
  assert len(names) == 3 + 5 * downsamplings
  assert names[0].startswith("7x7/1 ") and names[-1].startswith("7x7/1 ")
  assert sum(name.startswith("3x3/2 ") for name in names) == downsamplings


def test_both_layouts_compute_the_same_gradients():
  config = synthetic.get_config("tiny")
  for equation in conv_layouts.distinct_convolutions(
      config, config.batch_size
  ).values():
    gradients_nhwc = conv_layouts.layout_gradients(equation, nchw=False)
    gradients_nchw = conv_layouts.layout_gradients(equation, nchw=True)
    lhs_nhwc, kernel_hwio = gradients_nhwc[0](*gradients_nhwc[1])
    lhs_nchw, kernel_oihw = gradients_nchw[0](*gradients_nchw[1])
    np.testing.assert_allclose(
        lhs_nchw, jnp.transpose(lhs_nhwc, (0, 3, 1, 2)), rtol=1e-4, atol=1e-3
    )
    np.testing.assert_allclose(
        kernel_oihw, jnp.transpose(kernel_hwio, (3, 2, 0, 1)), rtol=1e-4, atol=1e-3
    )
