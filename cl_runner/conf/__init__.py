"""Hydra config groups of cl-run (a package so Hydra finds them when installed)."""
