"""Writers of test data in the real layouts of datasets (fake Cityscapes archives); never imported at run time."""
