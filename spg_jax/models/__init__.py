"""Flax Linen networks of SPG-Net: generators, discriminators and their layers."""
