"""sparse-routing-study: measurements that test 'Sparse Routing for LLM Inference'."""
__version__ = "0.1.0"
