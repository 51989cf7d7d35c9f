"""Hyper-parameter search: the Optuna presets in conf/hparams_search/ and a real study."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser

from cl_runner.config.compose import compose_jobs, preflight
from cl_runner.errors import UserError

PRESETS = sorted(p.stem for p in (Path(__file__).parents[1] / "cl_runner" / "conf"
                                  / "hparams_search").glob("*.yaml"))


def search_space(preset: str) -> dict:
    """The preset's sweeper settings checked, and its search space as Hydra parses it."""
    (job,) = compose_jobs([f"hparams_search={preset}"], multirun=True)
    sweeper = job.config.hydra.sweeper
    assert "optuna" in sweeper._target_.lower() and sweeper.direction == "maximize"
    assert sweeper.study_name == preset and sweeper.max_failure_rate == 1.0
    parsed = OverridesParser.create().parse_overrides(
        [f"{k}={v}" for k, v in sweeper.params.items()])
    return {o.get_key_element(): o for o in parsed}


def test_presets_search_what_they_say():
    assert PRESETS == ["lr", "memory_budget", "replay_batch"]
    lr = search_space("lr")["optimizer.lr"].value()  # Optuna: LogUniformDistribution
    assert (lr.start, lr.end, lr.tags) == (1e-4, 0.1, {"log"})
    batch = search_space("replay_batch")["dataloader.batch_size_mem"]
    assert list(batch.sweep_iterator()) == [8, 16, 32, 64, 128]
    budget = search_space("memory_budget")
    size = budget["buffer.max_size"].value()  # whole samples (IntUniform), at most 200
    assert (size.start, size.end) == (20, 200) and isinstance(size.start, int)
    assert list(budget["buffer"].sweep_iterator()) == [
        "parametric", "reservoir", "class_balanced", "experience_balanced"]


def test_every_value_of_every_preset_passes_preflight(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for preset in PRESETS:
        assert preflight([f"hparams_search={preset}"], multirun=True) == 1
    assert list(tmp_path.iterdir()) == []  # nothing written


@pytest.mark.parametrize(("override", "refused"), [
    ("buffer.max_size=int(interval(5, 100))", "buffer.max_size=5 is not allowed: at least 10"),
    ("buffer.max_size=interval(20, 100)", "buffer.max_size=20.0 is not allowed"),  # not int()
    ("dataloader.batch_size_mem=choice(8, -1)", "dataloader.batch_size_mem=-1 is not allowed"),
    ("hydra.sweeper.n_trials=0", "hydra.sweeper.n_trials=0 is not allowed"),
])
def test_a_bad_search_space_is_refused_before_the_first_trial(override, refused, tmp_path,
                                                             monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match=refused.replace("(", r"\(")):
        preflight(["hparams_search=lr", override], multirun=True)


@pytest.mark.slow
def test_a_six_trial_study_with_two_parallel_trials(tmp_path: Path):
    """Split Digits, lr preset, 2 trials at a time on the joblib launcher; SGD with a learning
    rate of 1e12 diverges: that trial's run is FAILED and Optuna records it as failed."""
    from mlflow.tracking import MlflowClient

    from tests.helpers import cl_run, history, local_store, runs_of

    proc = cl_run(tmp_path, "-m", "hparams_search=lr", "hydra.sweeper.n_trials=6",
                  "hydra.sweeper.n_jobs=2", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
                  "strategy.train_epochs=1", "optimizer=sgd",
                  "optimizer.lr=choice(0.01, 0.03, 0.1, 1e12)", timeout=600)
    assert "Failed experiment: training loss is nan" in proc.stderr + proc.stdout
    uri = local_store(tmp_path)
    runs = runs_of(uri)
    assert len(runs) == 6
    assert {r.data.tags["study"] for r in runs} == {"lr"}
    assert len({r.data.tags["sweep"] for r in runs}) == 1
    assert sorted(int(r.data.tags["sweep.job_num"]) for r in runs) == list(range(6))
    failed = [r for r in runs if r.info.status == "FAILED"]
    finished = [r for r in runs if r.info.status == "FINISHED"]
    assert failed and finished and len(failed) + len(finished) == 6
    assert {float(r.data.params["optimizer.lr"]) for r in failed} == {1e12}
    for run in finished:
        steps = history(uri, run.info.run_id, "accuracy/average_seen")
        assert [s for s, _ in steps] == list(range(5))
    # Optuna's best trial is the FINISHED run with the highest final average accuracy
    sweep = Path(runs[0].data.tags["sweep"])
    result = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    best = max(finished, key=lambda r: r.data.metrics["accuracy/average_seen"])
    assert result["best_value"] == best.data.metrics["accuracy/average_seen"]
    assert math.isclose(result["best_params"]["optimizer.lr"],
                        float(best.data.params["optimizer.lr"]))
    client = MlflowClient(tracking_uri=uri)
    assert len(client.search_runs([runs[0].info.experiment_id], "tags.study = 'lr'")) == 6
