"""cl_runner: continual learning with rehearsal, configured by Hydra, tracked in MLflow."""

__version__ = "0.1.0"
