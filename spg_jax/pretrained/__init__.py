"""Published pretrained networks: reading their PyTorch files without torch."""
