"""Inference: the Inpainter API and command line, image files, the web demo."""
