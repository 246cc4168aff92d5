"""Evaluation: image and label metrics, and the evaluation of a run with its baselines."""
