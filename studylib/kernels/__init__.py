"""Decode kernels the study times: Triton GEMVs (``triton_gemv``) and weight packing (``quant``)."""
