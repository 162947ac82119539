"""Serving through an engine (vLLM): the converted models exported as standard checkpoints
(``export``, ``moe_checkpoint``), a server the harness starts, health-checks and stops (``engine``),
and its exactness and decode speed beside ours in one invocation (``served``). Built by the vLLM
issue; may import ``quality`` (the variants it exports), ``decoding`` (our decode it is timed beside),
``timing`` (the timed modules' declared forms it serves at shapes with no weights) and the core."""
