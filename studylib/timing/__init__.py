"""Timing on a GPU (or the CPU dry run): the timed FFN modules, declared in ``modules.TIMED_MODULES``,
a decode-step model (``decode_model``), the resumable campaign (``campaign``), the bytes-moved
latency model (``latency_model``), the roofline and memory arithmetic, and ``make all``'s own
timing (``repro``). Imports only ``kernels``, ``paper`` and the core (the GPU image has no more)."""
