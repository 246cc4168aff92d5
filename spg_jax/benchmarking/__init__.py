"""Measuring tools: the benchmark command, profiling, FLOP counts, device peaks. Apart from the model code."""
