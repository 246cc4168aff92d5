"""The space-to-depth convolution is the direct one, values and gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from spg_jax.models import layers
from spg_jax.models import space_to_depth


def _direct(x: jax.Array, kernel: jax.Array) -> jax.Array:
  return jax.lax.conv_general_dilated(
      x, kernel, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC")
  )


@pytest.mark.parametrize(
    "height, width, in_features, size, out_features",
    [
        (22, 22, 16, 7, 3),  # the generators' output layer, small
        (21, 24, 5, 7, 4),  # an odd side
        (9, 10, 3, 3, 2),
        (12, 11, 2, 5, 8),
        (7, 7, 1, 7, 1),  # one output pixel
    ],
)
def test_conv_and_its_gradients_equal_the_direct_convolution(
    height, width, in_features, size, out_features
):
  keys = jax.random.split(jax.random.key(0), 3)
  x = jax.random.normal(keys[0], (2, height, width, in_features))
  kernel = jax.random.normal(keys[1], (size, size, in_features, out_features))
  cotangent = jax.random.normal(
      keys[2], (2, height - size + 1, width - size + 1, out_features)
  )
  expected, direct_vjp = jax.vjp(_direct, x, kernel)
  actual, folded_vjp = jax.vjp(space_to_depth.conv, x, kernel)
  assert actual.shape == expected.shape
  scale = np.sqrt(size * size * in_features)
  np.testing.assert_allclose(actual, expected, atol=1e-5 * scale)
  for got, want in zip(folded_vjp(cotangent), direct_vjp(cotangent)):
    np.testing.assert_allclose(
        got, want, atol=1e-5 * scale * np.abs(want).max()
    )


def test_conv_refuses_an_even_kernel():
  with pytest.raises(ValueError, match="square kernel of odd size; got 4x4"):
    space_to_depth.conv(jnp.zeros([1, 8, 8, 2]), jnp.zeros([4, 4, 2, 3]))


def test_fold_kernel_places_each_tap_where_its_phase_reads_it():
  """Folded entry [r, r', (e, e', c), (a, b, o)] is tap (2r + e - a,
  2r' + e' - b) of the kernel, zero where that falls outside it."""
  size, in_features, out_features = 5, 2, 3
  kernel = jax.random.normal(
      jax.random.key(0), (size, size, in_features, out_features)
  )
  folded = np.asarray(space_to_depth.fold_kernel(kernel))
  taps = (size + 1) // 2
  assert folded.shape == (taps, taps, 4 * in_features, 4 * out_features)
  for r, r2, e, e2, c, a, b, o in np.ndindex(
      taps, taps, 2, 2, in_features, 2, 2, out_features
  ):
    row, col = 2 * r + e - a, 2 * r2 + e2 - b
    inside = 0 <= row < size and 0 <= col < size
    want = kernel[row, col, c, o] if inside else 0.0
    got = folded[r, r2, (2 * e + e2) * in_features + c,
                 (2 * a + b) * out_features + o]
    assert got == want


def test_reflect_conv_forms_share_parameters_and_outputs():
  """A checkpoint of one form runs in the other: same parameter tree, same
  initial values from the same key, same outputs."""
  x = jax.random.normal(jax.random.key(1), (2, 16, 16, 5))
  direct = layers.ReflectConv(3, 7)
  folded = layers.ReflectConv(3, 7, form="space_to_depth")
  params = direct.init(jax.random.key(2), x)
  folded_params = folded.init(jax.random.key(2), x)
  jax.tree.map(np.testing.assert_array_equal, params, folded_params)
  # A bias starts at zero: give it values, so that a lost bias would show.
  params = jax.tree.map(lambda p: p + 0.5, params)
  np.testing.assert_allclose(
      folded.apply(params, x), direct.apply(params, x), atol=1e-5
  )


def test_a_dilated_reflect_conv_stays_direct():
  x = jax.random.normal(jax.random.key(1), (1, 12, 12, 4))
  direct = layers.ReflectConv(4, 3, dilation=2)
  params = direct.init(jax.random.key(0), x)
  folded = layers.ReflectConv(4, 3, dilation=2, form="space_to_depth")
  np.testing.assert_array_equal(
      folded.apply(params, x), direct.apply(params, x)
  )
  jaxpr = str(jax.make_jaxpr(folded.apply)(params, x))
  assert jaxpr.count("conv_general_dilated") == 1
  assert "rhs_dilation=(2, 2)" in jaxpr


def test_an_unknown_form_is_refused():
  with pytest.raises(ValueError, match=r"Unknown convolution form 'fft'"):
    layers.ReflectConv(3, 7, form="fft").init(
        jax.random.key(0), jnp.zeros([1, 8, 8, 1])
    )


def test_space_to_depth_conv_computes_in_its_dtype():
  """bfloat16 compute, float32 parameters, values within bfloat16's
  rounding of the float32 direct convolution's."""
  x = jax.random.normal(jax.random.key(0), (1, 12, 12, 4))
  module = layers.SpaceToDepthConv(3, 5, dtype=jnp.bfloat16)
  params = module.init(jax.random.key(1), x)
  assert params["params"]["kernel"].dtype == jnp.float32
  y = module.apply(params, x)
  assert y.dtype == jnp.bfloat16
  want = _direct(x, params["params"]["kernel"])
  np.testing.assert_allclose(
      y.astype(jnp.float32), want, atol=0.03 * float(jnp.abs(want).max())
  )
