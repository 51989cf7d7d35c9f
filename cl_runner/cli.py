"""`cl-run`: compose the config with Hydra and run one job (or a sweep with ``-m``)."""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig


def _job_tags() -> dict[str, str]:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    hc = HydraConfig.get()
    tags = {"cl_runner.overrides": " ".join(hc.overrides.task)}
    if hc.mode == RunMode.MULTIRUN:
        tags["sweep"] = hc.sweep.dir
        tags["sweep.job_num"] = str(hc.job.num)
    return tags


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def _task(cfg: DictConfig) -> float:
    from hydra.core.hydra_config import HydraConfig

    from cl_runner.config import ConfigError, validate
    from cl_runner.run import run_experiment

    try:
        validate(cfg)
    except ConfigError as err:
        print(f"cl-run: error: {err}", file=sys.stderr)
        sys.exit(2)
    result = run_experiment(cfg, HydraConfig.get().runtime.output_dir, tags=_job_tags())
    return result.final_average_accuracy


def main() -> None:
    """Console entry point."""
    _task()


if __name__ == "__main__":
    main()
