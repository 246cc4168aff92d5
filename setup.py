"""Installs spg_jax and its commands, with versions known to install together.

docs/design.md says which versions and why they are pinned.
"""

import setuptools

_CORE = [
    "jax[cpu]==0.10.2",
    "jaxlib==0.10.2",
    "flax==0.12.8",
    "optax==0.2.8",
    "orbax-checkpoint==0.12.8",
    "tensorflow-cpu==2.21.0",
    "tensorboard==2.21.0",
    "tensorflow-datasets==4.9.10",
    # tensorflow-datasets imports it without declaring it.
    "importlib_resources==7.1.0",
    "ml-collections==1.1.0",
    "clu==0.0.12",
    "absl-py==2.5.1",
    "etils[epath]==1.15.0",
    "numpy==2.4.6",
    # gradio, the demo's extra, needs pillow < 13.
    "pillow==12.3.0",
    # Progress bars of inference over folders (also a dependency of TFDS).
    "tqdm==4.70.1",
]

_DEMO = [
    "gradio==6.31.0",
]

_NOTEBOOK = [
    "ipywidgets==8.1.9",
]

_EVALUATE = [
    # cv2.inpaint: the Telea and Navier-Stokes baselines; headless, no GUI.
    "opencv-python-headless==5.0.0.93",
    # The PatchMatch baseline (evaluation/baselines.py says why this one).
    "pypatchmatch==2.2.0",
    # The charts and example grids of spg-evaluate (evaluation/report.py).
    "matplotlib==3.11.2",
]

_TEST = _DEMO + _NOTEBOOK + _EVALUATE + [
    "pytest==9.0.3",
    "pytest-xdist==3.8.0",
    # The official Cityscapes label definitions, to check ours against.
    "cityscapesscripts==2.2.4",
    # Drives Debian's chromium (scripts/install_chromium.sh) in the demo test.
    "playwright==1.65.2",
    # Execute notebooks/demo.ipynb headless.
    "nbclient==0.11.0",
    "nbformat==5.11.1",
    "ipykernel==7.4.0",
    # Reference PSNR and SSIM to check metrics.py against.
    "scikit-image==0.26.0",
]

setuptools.setup(
    name="spg_jax",
    version="0.1.0",
    description=(
        "SPG-Net (segmentation prediction and guidance network for image"
        " inpainting) in JAX/Flax."
    ),
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    packages=setuptools.find_packages(include=["spg_jax", "spg_jax.*"]),
    install_requires=_CORE,
    extras_require={
        "demo": _DEMO,
        "notebook": _NOTEBOOK,
        "evaluate": _EVALUATE,
        "test": _TEST,
    },
    # Short names of the commands; each also runs as `python -m MODULE`.
    entry_points={
        "console_scripts": [
            "spg-train = spg_jax.main:run",
            "spg-inpaint = spg_jax.inference.inpaint:run",
            "spg-demo = spg_jax.inference.demo:run",
            "spg-evaluate = spg_jax.evaluation.compare:run",
            "spg-inspect = spg_jax.data.inspect_data:run",
            "spg-benchmark = spg_jax.benchmarking.benchmark:run",
            "spg-weights = spg_jax.pretrained.converted:run",
            "spg-fake-cityscapes = spg_jax.testing.cityscapes_archives:run",
        ]
    },
    license="Apache-2.0",
)
