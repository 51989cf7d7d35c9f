"""Configuration: the run-wide schema, validation of a composed config, and the command line's
preflight (compose every job and validate it before Hydra starts anything)."""

from cl_runner.config.schema import register
from cl_runner.config.validate import validate

__all__ = ["register", "validate"]
