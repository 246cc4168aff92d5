"""TFDS builders of the datasets spg_jax defines: synthetic street scenes and Helen."""
