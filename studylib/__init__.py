"""sparse-routing-study: measurements that test 'Sparse Routing for LLM Inference'.

The package follows the study's flows (ARCHITECTURE.md has the map); dependencies run one way::

    book -> claims -> estimates -> quality | timing | decoding | serving -> paper, kernels, core

Core (this level): ``config`` (profiles and the section-check registry), ``results`` (the store
under data/), ``provenance``, ``models`` (loading real models), ``shapes`` (real model shapes),
``stats`` (intervals and tests every estimate uses), ``timer`` (the timing harness).
"""
__version__ = "0.1.0"
