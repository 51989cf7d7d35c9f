"""Bad settings through the real `cl-run` entry point: one line naming setting, value and what
is allowed, exit code 2, before any data is loaded or any MLflow run exists."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from cl_runner import cli

BAD = [
    (["buffer.max_size=-5"], "buffer.max_size=-5", "positive integer"),
    (["buffer.max_size=0"], "buffer.max_size=0", "positive integer"),
    (["buffer.max_size=2.5"], "buffer.max_size=2.5", "positive integer"),
    (["buffer.max_size=many"], "buffer.max_size='many'", "positive integer"),
    (["buffer.groupby=label"], "buffer.groupby='label'", "null, class, task or experience"),
    (["buffer.max_size=5"], "buffer.max_size=5", "at least 10"),
    (["buffer.groupby=experience", "buffer.max_size=4"], "buffer.max_size=4", "at least 5"),
    (["buffer=class_balanced", "buffer.max_size=9"], "buffer.max_size=9", "10 classes"),
    (["buffer=experience_balanced", "buffer.max_size=3"], "buffer.max_size=3", "5 experiences"),
    (["buffer=class_balanced", "buffer.adaptive_size=false"], "buffer.total_num_classes=None",
     ">= 10"),
    (["buffer=reservoir", "selection=herding"], "selection='HerdingSelectionStrategy'",
     "random with buffer ReservoirSamplingBuffer"),
    (["buffer=class_balanced", "selection=closest_to_center"],
     "selection='ClosestToCenterSelectionStrategy'", "need buffer=parametric"),
    (["strategy.train_mb_size=0"], "strategy.train_mb_size=0", "positive integer"),
    (["strategy.train_mb_size=-1"], "strategy.train_mb_size=-1", "positive integer"),
    (["strategy.train_mb_size=big"], "strategy.train_mb_size='big'", "positive integer"),
    (["strategy.eval_mb_size=0"], "strategy.eval_mb_size=0", "positive integer"),
    (["strategy.train_epochs=-1"], "strategy.train_epochs=-1", "non-negative integer"),
    (["strategy.train_epochs=1.5"], "strategy.train_epochs=1.5", "non-negative integer"),
    (["optimizer.lr=0"], "optimizer.lr=0", "positive number"),
    (["optimizer.lr=-0.1"], "optimizer.lr=-0.1", "positive number"),
    (["optimizer.lr=fast"], "optimizer.lr='fast'", "positive number"),
    (["optimizer=sgd", "optimizer.momentum=1.5"], "optimizer.momentum=1.5", "[0, 1)"),
    (["model.hidden_size=0"], "model.hidden_size=0", "positive integer"),
    (["model.drop_rate=1.5"], "model.drop_rate=1.5", "[0, 1)"),
    (["benchmark.n_experiences=0"], "benchmark.n_experiences=0", "positive integer"),
    (["benchmark.n_experiences=3"], "benchmark.n_experiences=3", "divisor of the 10 classes"),
    (["benchmark.n_experiences=11"], "benchmark.n_experiences=11", "divisor"),
    (["benchmark.fixed_class_order=[0,1,2,3,4,5,6,7,8,12]"], "benchmark.fixed_class_order",
     "unknown: [12]"),
    (["benchmark.fixed_class_order=[0,0,1,2,3,4,5,6,7,8]"], "benchmark.fixed_class_order",
     "each class at most once"),
    (["device=cuda"], "device='cuda'", "no CUDA GPU"),
    (["device=tpu"], "device='tpu'", "cpu, cuda or cuda:N"),
    (["dataloader.batch_size_mem=0"], "dataloader.batch_size_mem=0", "null or a positive"),
    (["dataloader.batch_size=-3"], "dataloader.batch_size=-3", "null or a positive"),
    (["buffer._target_=cl_runner.buffers.NoSuchBuffer"], "buffer._target_",
     "importable class"),
    (["model._target_=nowhere.Model"], "model._target_='nowhere.Model'", "importable"),
    (["seed=abc"], "seed='abc'", "an integer"),
    (["tracking.experiment_name= "], "tracking.experiment_name", "non-empty"),
    (["benchmark=split_mnist", "benchmark.root=/no/such/folder"], "benchmark.root",
     "existing folder when benchmark.download=false"),
    (["resume=/no/such/run"], "resume=/no/such/run", "no checkpoint.pt"),
]


def run_cli(argv: list[str], root: Path, monkeypatch: pytest.MonkeyPatch) -> int:
    """The real console entry point, in-process (Hydra parses ``sys.argv``)."""
    monkeypatch.setenv("CL_RUNNER_OUTPUT_ROOT", str(root))
    monkeypatch.setattr(sys, "argv", ["cl-run", *argv])
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    return exit_info.value.code


@pytest.mark.parametrize(("overrides", "setting", "allowed"), BAD,
                         ids=[" ".join(o) for o, _, _ in BAD])
def test_bad_setting_is_one_line_exit_2(overrides, setting, allowed, tmp_path, monkeypatch,
                                        capsys):
    code = run_cli(overrides, tmp_path, monkeypatch)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1, err
    assert err[0].startswith("cl-run: error: ") and setting in err[0] and allowed in err[0]
    assert "Traceback" not in err[0]
    assert not (tmp_path / "mlflow.db").exists()  # no MLflow run was opened


def test_there_are_at_least_30_cases():
    assert len(BAD) >= 30
