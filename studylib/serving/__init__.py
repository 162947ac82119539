"""Serving through an engine (vLLM): the converted models exported as standard checkpoints, a
server the harness starts, health-checks and stops, and its speed and exactness beside ours.
Built by the vLLM issue; may import ``quality`` (the variants it exports) and the core."""
