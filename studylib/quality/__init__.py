"""Quality of real models under each technique: tasks (``tasks/*.yaml``, found by scanning;
``taskdata`` builds their items), variants (``variants*.yaml``: pipelines of the registered
``transforms``), evaluation (``evaluation``), resumable item-chunked units (``units``), and the
checks that a kernel or a machine changes no answer (``quant_eval``/``quant_check``,
``machine_check``, ``gptq_holdout``).

May import ``paper``, ``kernels`` and the core; nothing above."""

#: the pruning methods ``transforms.prune`` implements (the quality section names them; checked light)
PRUNING_METHODS = ("magnitude", "wanda", "sparsegpt")
