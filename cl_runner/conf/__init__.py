"""Hydra config groups of cl-run (a package so Hydra finds them when installed).

Importing it (Hydra does, for ``initialize_config_module("cl_runner.conf")``) registers the
structured-config schemas the YAML files extend.
"""

from cl_runner.config.schema import register

register()
