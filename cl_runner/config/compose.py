"""The command line's preflight: compose and validate every job before Hydra starts anything.

``cl-run`` calls ``preflight(argv)`` before handing the command line to Hydra. Each job a
command would run (one, or every combination of a ``-m`` sweep) is composed with Hydra's
compose API and validated, so a bad value in job 17 of a sweep is refused before job 0 trains,
and nothing is written: no run folder, no MLflow run. Hydra's own composition errors (unknown
option, unknown key, wrong type) become the same one-line ``SettingError`` with the valid
options or keys, closest match first.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException, MissingConfigException, OverrideParseException
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

from cl_runner.checks import SettingError, field_rule
from cl_runner.config.schema import check_writable_folder, register
from cl_runner.config.targets import unknown_key
from cl_runner.config.validate import validate
from cl_runner.errors import UserError
from cl_runner.resume import check_resume

CONFIG_MODULE, CONFIG_NAME = "cl_runner.conf", "config"


@dataclass
class Job:
    """One job of a command line: its overrides and its composed config."""

    overrides: list[str]
    config: DictConfig


def job_overrides(overrides: Sequence[str], multirun: bool) -> list[list[str]]:
    """The override list of every job the command line starts.

    Sweeps Hydra's basic sweeper cannot enumerate (``interval(...)`` for Optuna) are left to
    their sweeper; the rest of the command is checked once.
    """
    overrides = list(overrides)
    if not multirun:
        return [overrides]
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except OverrideParseException as err:
        raise explain(err, overrides) from None
    try:
        (batches,) = BasicSweeper.split_arguments(parsed, max_batch_size=None)
    except HydraException:
        return [[o.input_line for o in parsed if not o.is_sweep_override()]]
    return batches


def group_options(group: str) -> list[str]:
    """The options of config group ``group`` (for error messages)."""
    from hydra.core.global_hydra import GlobalHydra

    loader = GlobalHydra.instance().config_loader()
    return sorted(loader.get_group_options(group))


def _closest(word: str, options: Sequence[str]) -> str:
    ranked = difflib.get_close_matches(word, options, n=len(options), cutoff=0.0)
    return ", ".join(ranked)


def _override_value(overrides: Sequence[str], key: str) -> str:
    for line in overrides:
        name, _, value = line.lstrip("+~").partition("=")
        if name == key:
            return value
    return ""


def explain(err: Exception, overrides: Sequence[str]) -> UserError:
    """Hydra's (often multi-line) composition error as one line naming setting and choices."""
    if isinstance(err, OverrideParseException):
        reason = " ".join(str(err).split(" See https://")[0].split())
        return UserError(f"cannot read the override {err.override!r}: {reason}")
    if isinstance(err, MissingConfigException) and err.missing_cfg_file:
        group, _, option = err.missing_cfg_file.rpartition("/")
        if group:
            return SettingError(group, option, f"one of {_closest(option, group_options(group))}")
    cause = err.__cause__
    if isinstance(cause, OmegaConfBaseException) and cause.full_key:
        key = str(cause.full_key)
        group, _, name = key.rpartition(".")
        value = _override_value(overrides, key)
        rule = field_rule(cause.object_type, str(cause.key)) if cause.object_type else None
        if "not in" in str(cause.msg) or "Missing key" in str(cause.msg):
            if not group:
                return _unknown_root_name(name, value, _known_keys(cause))
            return unknown_key(group, name, value, _known_keys(cause), group)
        allowed = rule.allowed if rule is not None else str(cause.msg).splitlines()[0]
        return SettingError(key, value, allowed)
    return UserError(" ".join(str(err).split()))


def _known_keys(cause: OmegaConfBaseException) -> list[str]:
    node = cause.parent_node
    if node is None:
        return []
    return [str(k) for k in node if not str(k).startswith("_") and str(k) != "hydra"]


def _unknown_root_name(name: str, value: str, settings: Sequence[str]) -> SettingError:
    from hydra.core.global_hydra import GlobalHydra

    groups = GlobalHydra.instance().config_loader().list_groups("")
    groups = [g for g in groups if g not in ("hydra", "schema")]
    settings = [s for s in settings if s not in groups]
    return SettingError(name, value, f"not a config group (groups: {_closest(name, groups)}) "
                                     f"nor a setting ({_closest(name, settings)})")


def compose_jobs(argv_overrides: Sequence[str], multirun: bool) -> Iterator[Job]:
    """Compose every job of the command line (raises ``UserError`` for a composition error)."""
    from hydra import compose, initialize_config_module

    register()
    jobs = job_overrides(argv_overrides, multirun)
    with initialize_config_module(CONFIG_MODULE, version_base="1.3"):
        for overrides in jobs:
            try:
                config = compose(CONFIG_NAME, overrides=overrides, return_hydra_config=True)
            except HydraException as err:
                raise explain(err, overrides) from None
            yield Job(overrides, config)


def preflight(argv_overrides: Sequence[str], multirun: bool) -> int:
    """Compose and validate every job; raise ``UserError`` (one line) for the first bad one,
    prefixed with the job's overrides when a sweep has several. Returns the number of jobs."""
    count = 0
    for job in compose_jobs(argv_overrides, multirun):
        try:
            validate(job.config, job.overrides)
            hydra_dir = job.config.hydra.sweep.dir if multirun else job.config.hydra.run.dir
            check_writable_folder("hydra.sweep.dir" if multirun else "hydra.run.dir", hydra_dir)
            if job.config.resume:
                check_resume(job.config, missing_ok=multirun)
        except SettingError as err:
            if multirun:
                raise UserError(f"job {' '.join(job.overrides)}: {err}") from None
            raise
        count += 1
    return count
