"""Peak dense FLOP/s of accelerators, for model FLOPs utilisation (MFU).

Pure Python (no JAX, no TensorFlow), so that the PyTorch twin in
`benchmarks/` divides by the same peaks. The figures are the vendors'
dense (no sparsity) peaks per chip or GPU. A float32 step is compared with
the rate the hardware actually runs float32 convolutions at under the
frameworks' default precision: TF32 tensor cores on NVIDIA A100/H100/H200,
bfloat16 passes of the MXU on TPUs. A CPU has no table entry: the benchmarks
measure its peak with large matmuls in the same run. An accelerator missing
from the table gets no MFU rather than one against a guessed peak.
"""

# The side of the square matmuls that measure a CPU's peak, large enough
# that a few cores spend well over 99% of their time in the multiply itself,
# and how many timed repeats (after one untimed) give the best time.
CPU_PEAK_MATMUL_SIZE = 2048
CPU_PEAK_REPEATS = 5
# Where the peak is from when the device is an accelerator not in the table.
UNKNOWN_PEAK_SOURCE = (
    "none: an accelerator not in spg_jax.benchmarking.device_peaks (add its dense peak"
    " there for an MFU)"
)

# (substring of the device kind, {dtype: peak TFLOP/s}), most specific first:
# "TPU v5 lite" (v5e) must match before "TPU v5" (v5p).
_PEAK_TFLOPS = (
    ("TPU v6 lite", {"bfloat16": 918.0, "float32": 918.0}),
    ("TPU v6e", {"bfloat16": 918.0, "float32": 918.0}),
    ("TPU v5 lite", {"bfloat16": 197.0, "float32": 197.0}),
    ("TPU v5e", {"bfloat16": 197.0, "float32": 197.0}),
    ("TPU v5p", {"bfloat16": 459.0, "float32": 459.0}),
    ("TPU v5", {"bfloat16": 459.0, "float32": 459.0}),
    ("TPU v4", {"bfloat16": 275.0, "float32": 275.0}),
    ("H100 PCIe", {"bfloat16": 756.0, "float32": 378.0}),
    # The NVL datasheet gives 1,671 (bf16) and 835 (TF32) with sparsity.
    ("H100 NVL", {"bfloat16": 835.5, "float32": 417.5}),
    ("H100", {"bfloat16": 989.4, "float32": 494.7}),
    ("H200", {"bfloat16": 989.4, "float32": 494.7}),
    ("A100", {"bfloat16": 312.0, "float32": 156.0}),
)


def table_peak_flops(device_kind: str, dtype: str) -> float | None:
  """Peak FLOP/s of one device of `device_kind` in `dtype`; None if unknown.

  Args:
    device_kind: as the framework names it, e.g. JAX's `device.device_kind`
      ("TPU v5 lite", "NVIDIA H100 80GB HBM3") or `torch.cuda.get_device_name`.
    dtype: 'float32' or 'bfloat16'.
  """
  for name, peaks in _PEAK_TFLOPS:
    if name.lower() in device_kind.lower():
      return peaks[dtype] * 1e12
  return None


def step_figures(
    flops_per_step: float,
    step_seconds: float,
    images_per_step: int,
    peak: tuple[float | None, str],
    compile_seconds: float,
) -> dict[str, float | str | None]:
  """Throughput, FLOP/s and MFU of a step; the JAX benchmark and the PyTorch
  twin both report these, computed the same way.

  Args:
    flops_per_step: all devices' FLOPs in one step.
    step_seconds: one step's time.
    images_per_step: the global batch.
    peak: the devices' peak FLOP/s together (None if unknown, and then so
      are the peak and MFU figures), and where the figure is from.
    compile_seconds: the compilation's time.
  """
  peak_flops, peak_source = peak
  flops_per_second = flops_per_step / step_seconds
  return {
      "step_time_ms": step_seconds * 1e3,
      "images_per_sec": images_per_step / step_seconds,
      "compile_s": compile_seconds,
      "flops_per_step": flops_per_step,
      "tflops_per_sec": flops_per_second / 1e12,
      "peak_tflops_per_sec": None if peak_flops is None else peak_flops / 1e12,
      "peak_source": peak_source,
      "mfu": None if peak_flops is None else flops_per_second / peak_flops,
  }
