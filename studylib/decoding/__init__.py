"""Decoding on the CPU with real models: greedy decode speed of each quality variant in an
executable form (``cpu_speed``, ``expert_exec``, ``teal_exec``), the CPU weight kernels
(``weight_kernels``) and speculative decoding (``speculative``, ``spec_sweep``).
May import ``quality`` (the variants it decodes), ``kernels`` and the core."""
