"""How the program runs on its devices: mesh and sharding, dispatch, host CPU, compilation cache, whole-file writes."""
