"""Decoding strategies measured on real models on the CPU (speculative decoding, greedy baselines)."""
