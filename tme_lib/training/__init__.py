"""Training: the experiment spec (:mod:`~tme_lib.training.spec`), the trainer, run records
and metrics."""
