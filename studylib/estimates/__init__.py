"""Every statistic the book reports, computed from data/: quality deltas and floors
(``analysis``), GPU speedups (``gpu_claims``), conversions (``conversion_analysis``), the Eq. 25
fits (``fits``), power (``power``), whole-model composition (``composition``), the ROI Monte
Carlo (``roi``), speculative decoding (``spec_analysis``) and the sweet spot (``sweet_spot``).

May import the measurement packages (for declarations: a variant's steps, a timed module's
routing), ``paper`` and the core; never ``claims`` or ``book``."""
