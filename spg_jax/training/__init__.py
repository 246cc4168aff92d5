"""Training: state, losses, the data-parallel steps of each phase, the loop, checkpoints."""
