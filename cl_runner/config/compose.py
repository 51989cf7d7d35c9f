"""The command line's preflight: compose and validate every job before Hydra starts anything.

``cl-run`` calls ``preflight(argv)`` before handing the command line to Hydra. Each job a
command would run (one, or every combination of a ``-m`` sweep) is composed with Hydra's
compose API and validated, so a bad value in job 17 of a sweep is refused before job 0 trains,
and nothing is written: no run folder, no MLflow run. Hydra's own composition errors (unknown
option, unknown key, wrong type) become the same one-line ``SettingError`` with the valid
options or keys, closest match first.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException, MissingConfigException, OverrideParseException
from omegaconf import DictConfig, OmegaConf
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
    return compose_each(job_overrides(argv_overrides, multirun))


def compose_each(jobs: Iterable[list[str]]) -> Iterator[Job]:
    """Compose each override list as a job (raises ``UserError`` for a composition error)."""
    from hydra import compose, initialize_config_module

    register()
    with initialize_config_module(CONFIG_MODULE, version_base="1.3"):
        for overrides in jobs:
            try:
                config = compose(CONFIG_NAME, overrides=overrides, return_hydra_config=True)
            except HydraException as err:
                raise explain(err, overrides) from None
            yield Job(overrides, config)


@dataclass
class SpaceValue:
    """One value a sweeper may give a setting: the first job with that value."""

    key: str
    value: Any
    overrides: list[str]


def search_space(config: DictConfig, base: Sequence[str], argv_overrides: Sequence[str]
                 ) -> list[SpaceValue]:
    """Each value a sweeper may choose, put into the first job: every value of a choice or
    range and both ends of an interval, from ``hydra.sweeper.params`` (an Optuna study's
    search space, a preset's sweep) and from the command line's sweeps that Hydra's basic
    sweeper cannot enumerate (``interval(...)``). One job per value, not their product: a
    value that no job could use is refused before the first trial starts."""
    from hydra.core.override_parser.types import Transformer

    params = config.hydra.sweeper.get("params") or {}
    by_key = {str(k): f"{k}={v}" for k, v in params.items()}
    # the command line's sweep of a key replaces the preset's (as the Optuna sweeper does)
    by_key.update((o.split("=", 1)[0], o) for o in argv_overrides if "interval(" in o)
    lines = list(by_key.values())
    if not lines:
        return []
    try:
        parsed = OverridesParser.create().parse_overrides(lines)
    except OverrideParseException as err:
        raise explain(err, lines) from None
    values = []
    for override in parsed:
        if not override.is_sweep_override():
            continue
        key = override.get_key_element()
        if override.is_interval_sweep():
            interval = override.value()
            pairs = [(v, v) for v in (interval.start, interval.end)]
        else:
            pairs = list(zip(override.sweep_iterator(),
                             override.sweep_iterator(transformer=Transformer.encode),
                             strict=True))
        kept = [o for o in base if o.lstrip("+~").split("=", 1)[0] != key.lstrip("+~")]
        values += [SpaceValue(key, v, [*kept, f"{key}={text}"]) for v, text in pairs]
    return values


def check_search_space(first: Job, argv_overrides: Sequence[str]) -> None:
    """Validate the first job with each search-space value: a setting's value is put into a
    copy of its config (a validation, no composition); a config group's option (or a value
    the config's types refuse) is composed as its own job, which explains the error."""
    trials = first.config.hydra.sweeper.get("n_trials")
    if trials is not None and (not isinstance(trials, int) or trials < 1):
        raise SettingError("hydra.sweeper.n_trials", trials, "a positive number of trials")
    groups = set(first.config.hydra.runtime.choices)
    to_compose = []
    for item in search_space(first.config, first.overrides, argv_overrides):
        name = item.key.lstrip("+~")
        if name in groups or name.startswith("hydra") or item.key.startswith("~"):
            to_compose.append(item.overrides)
            continue
        config = copy.deepcopy(first.config)  # nested nodes too: each value alone
        try:
            OmegaConf.update(config, name, item.value, force_add=item.key.startswith("+"))
        except OmegaConfBaseException:
            to_compose.append(item.overrides)
            continue
        _check_job(Job(item.overrides, config), multirun=True, folders=False)
    for job in compose_each(to_compose):
        _check_job(job, multirun=True, folders=False)


def preflight(argv_overrides: Sequence[str], multirun: bool) -> int:
    """Compose and validate every job, and every value of a sweeper's search space; raise
    ``UserError`` (one line) for the first bad one, prefixed with the job's overrides when a
    sweep has several. Returns the number of jobs."""
    count, first = 0, None
    for job in compose_jobs(argv_overrides, multirun):
        _check_job(job, multirun)
        first = first or job
        count += 1
    if multirun and first is not None:
        check_search_space(first, argv_overrides)
    return count


def runs_elsewhere(config: DictConfig) -> bool:
    """Whether the launcher runs the jobs on other machines (a SLURM cluster's nodes)."""
    launcher = config.get("hydra", {}).get("launcher", {}) or {}
    return str(launcher.get("_target_", "")).endswith("SlurmLauncher")


def _check_job(job: Job, multirun: bool, folders: bool = True) -> None:
    config = job.config
    if runs_elsewhere(config) and config.device != "cpu":
        # this machine's GPUs are not the nodes': each job checks its device when it starts
        config = config.copy()
        config.device = "cpu"
    try:
        validate(config, job.overrides)
        if not folders:  # a search-space value: the first job's folders were checked
            return
        hydra_dir = job.config.hydra.sweep.dir if multirun else job.config.hydra.run.dir
        check_writable_folder("hydra.sweep.dir" if multirun else "hydra.run.dir", hydra_dir)
        if job.config.resume:
            check_resume(job.config, missing_ok=multirun)
    except SettingError as err:
        if multirun:
            raise UserError(f"job {' '.join(job.overrides)}: {err}") from None
        raise
