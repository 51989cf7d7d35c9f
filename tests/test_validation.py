"""Bad settings through the real `cl-run` entry point: one line naming setting, value and what
is allowed, exit code 2, before torch, any data or any MLflow run is touched; no folder left."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cl_runner import cli
from tests.helpers import REPO

BAD = [
    (["buffer.max_size=-5"], "buffer.max_size=-5", "non-negative integer"),
    (["buffer.max_size=0"], "buffer.max_size=0", "at least 10"),
    (["buffer.max_size=2.5"], "buffer.max_size=2.5", "non-negative integer"),
    (["buffer.max_size=many"], "buffer.max_size='many'", "non-negative integer"),
    (["buffer.groupby=label"], "buffer.groupby='label'", "one of null, class, task, experience"),
    (["buffer.max_size=5"], "buffer.max_size=5", "at least 10: one sample for each of the 10"),
    (["buffer.groupby=experience", "buffer.max_size=4"], "buffer.max_size=4", "at least 5"),
    (["buffer=class_balanced", "buffer.max_size=9"], "buffer.max_size=9", "10 classes"),
    (["buffer=experience_balanced", "buffer.max_size=3"], "buffer.max_size=3", "5 experiences"),
    (["buffer=class_balanced", "buffer.adaptive_size=false"], "buffer.total_num_classes=None",
     "a positive integer when adaptive_size is false"),
    (["buffer=class_balanced", "buffer.adaptive_size=false", "buffer.total_num_classes=5"],
     "buffer.total_num_classes=5", "an integer >= 10"),
    (["buffer=reservoir", "selection=herding"], "selection='herding'",
     "random with buffer=reservoir"),
    (["buffer=class_balanced", "selection=closest_to_center"], "selection='closest_to_center'",
     "needs buffer=parametric"),
    (["selection=herding", "selection.layer_name=banana"], "selection.layer_name='banana'",
     "a layer of the model: features"),
    (["strategy.train_mb_size=0"], "strategy.train_mb_size=0", "positive integer"),
    (["strategy.train_mb_size=-1"], "strategy.train_mb_size=-1", "positive integer"),
    (["strategy.train_mb_size=big"], "strategy.train_mb_size='big'", "positive integer"),
    (["strategy.eval_mb_size=0"], "strategy.eval_mb_size=0", "positive integer"),
    (["strategy.train_epochs=-1"], "strategy.train_epochs=-1", "non-negative integer"),
    (["strategy.train_epochs=1.5"], "strategy.train_epochs=1.5", "non-negative integer"),
    (["strategy=naive", "buffer=reservoir"], "buffer='reservoir'",
     "strategy=naive keeps no memory"),
    (["strategy=naive", "dataloader=group_balanced"], "dataloader=",
     "left unset with strategy=naive"),
    (["optimizer.lr=0"], "optimizer.lr=0", "positive number"),
    (["optimizer.lr=-0.1"], "optimizer.lr=-0.1", "positive number"),
    (["optimizer.lr=fast"], "optimizer.lr='fast'", "positive number"),
    (["optimizer.lr=inf"], "optimizer.lr=inf", "positive number"),
    (["optimizer.weight_decay=inf"], "optimizer.weight_decay=inf", "non-negative finite"),
    (["optimizer=sgd", "optimizer.momentum=1.5"], "optimizer.momentum=1.5", "[0, 1)"),
    (["+optimizer.foo=1"], "optimizer.foo=1", "not a setting of AdamSettings"),
    (["+optimizer.betas=[2,3]"], "optimizer.betas=[2.0, 3.0]", "two numbers in [0, 1)"),
    (["model.hidden_size=0"], "model.hidden_size=0", "positive integer"),
    (["model.drop_rate=1.5"], "model.drop_rate=1.5", "[0, 1)"),
    (["model.num_classes=5"], "model.num_classes=5", "at least 10"),
    (["model.input_size=10"], "model.input_size=10", "64 (the benchmark's inputs"),
    (["model=simple_cnn"], "model._target_", "a model for flat inputs"),
    (["model=simple_cnn", "model.width=0"], "model.width=0", "positive integer"),
    (["model.hidden_layers=1000000"], "hidden_layers=1000000", "a model that fits in memory"),
    (["benchmark.n_experiences=0"], "benchmark.n_experiences=0", "positive integer"),
    (["benchmark.n_experiences=3"], "benchmark.n_experiences=3", "divisor of the 10 classes"),
    (["benchmark.n_experiences=11"], "benchmark.n_experiences=11", "divisor"),
    (["benchmark.fixed_class_order=[0,1,2,3,4,5,6,7,8,12]"], "benchmark.fixed_class_order",
     "unknown: [12]"),
    (["benchmark.fixed_class_order=[0,0,1,2,3,4,5,6,7,8]"], "benchmark.fixed_class_order",
     "each class at most once"),
    (["benchmark.fixed_class_order=[]"], "benchmark.fixed_class_order=[]", "non-empty list"),
    (["benchmark=split_mnist", "benchmark.root=/no/such/folder"], "benchmark.root",
     "existing folder when download=false"),
    (["device=cuda"], "device='cuda'", "no CUDA GPU"),
    (["device=tpu"], "device='tpu'", "cpu, cuda or cuda:N"),
    (["dataloader.batch_size_mem=0"], "dataloader.batch_size_mem=0", "null or a positive"),
    (["dataloader.batch_size=-3"], "dataloader.batch_size=-3", "null or a positive"),
    (["buffer._target_=cl_runner.buffers.NoSuchBuffer"], "buffer._target_", "importable class"),
    (["model._target_=nowhere.Model"], "model._target_='nowhere.Model'", "importable"),
    (["seed=abc"], "seed='abc'", "an integer"),
    (["seed=-1"], "seed=-1", "an integer from 0 to 2**63-1"),
    (["seed=18446744073709551616"], "seed=18446744073709551616", "an integer from 0"),
    (["tracking.experiment_name= "], "tracking.experiment_name", "non-empty"),
    ([f"tracking.experiment_name={'x' * 1000}"], "(1000 characters)", "at most 256"),
    (["tracking.tracking_uri=garbage://x"], "tracking.tracking_uri='garbage://x'",
     "sqlite:///PATH"),
    (["paths.output_root="], "paths.output_root=''", "a folder path"),
    (["paths.output_root=/proc/cl_run"], "paths.output_root", "a folder that can be created"),
    (["hydra.run.dir=/proc/cl_run"], "hydra.run.dir", "a folder that can be created"),
    (["buffer.foo=1"], "buffer.foo=", "not a setting of buffer (its settings:"),
    (["+buffer.foo=1"], "buffer.foo=", "not a setting of ParametricBuffer"),
    (["buffer.maxsize=10"], "buffer.maxsize=", "its settings: max_size"),
    (["nosuchkey=1"], "nosuchkey=", "not a config group"),
    (["nosuchgroup=x"], "nosuchgroup=", "not a config group"),
    (["buffer=reservior"], "buffer='reservior'", "one of reservoir"),
    (["experiment=nonexistent"], "experiment='nonexistent' is not allowed: one of",
     "seed_tutorial"),
    (["buffer.max_size=[1,"], "buffer.max_size=[1,", "no viable alternative"),
    (["-m", "buffer.max_size=20,5O", "seed=0,1"], "job buffer.max_size=5O seed=0",
     "buffer.max_size='5O' is not allowed"),
    (["resume=/no/such/run"], "resume=/no/such/run", "no run folder there"),
]


def run_cli(argv: list[str], root: Path, monkeypatch: pytest.MonkeyPatch) -> int:
    """The real console entry point, in-process (Hydra parses ``sys.argv``)."""
    monkeypatch.setenv("CL_RUNNER_OUTPUT_ROOT", str(root))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setattr(sys, "argv", ["cl-run", *argv])
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    return exit_info.value.code


@pytest.mark.parametrize(("overrides", "setting", "allowed"), BAD,
                         ids=[" ".join(o)[:60] for o, _, _ in BAD])
def test_bad_setting_is_one_line_exit_2(overrides, setting, allowed, tmp_path, monkeypatch,
                                        capsys):
    code = run_cli(overrides, tmp_path / "out", monkeypatch)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1, err
    assert err[0].startswith("cl-run: error: ") and setting in err[0] and allowed in err[0]
    assert "Traceback" not in err[0]
    assert not (tmp_path / "out").exists()  # no folder, no MLflow store: nothing written


def test_empty_output_root_from_the_environment_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CL_RUNNER_OUTPUT_ROOT", "")
    monkeypatch.setattr(sys, "argv", ["cl-run"])
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    code = exit_info.value.code
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "paths.output_root=''" in err[0]
    assert list(tmp_path.iterdir()) == []


PROBE = """
import json, sys
from cl_runner import cli
codes = []
for argv in json.loads(sys.argv[1]):
    sys.argv = ["cl-run", *argv]
    try:
        cli.main()
    except SystemExit as exc:
        codes.append(exc.code)
torch_before = "torch._C" in sys.modules
import cl_runner.run  # starts the MLflow writer process before it imports torch
print(json.dumps({"codes": codes, "torch": torch_before, "mlflow": "mlflow" in sys.modules,
                  "runner_torch": "torch._C" in sys.modules}))
"""


def test_help_and_config_errors_answer_without_torch_or_mlflow(tmp_path):
    """One error of each kind, from each group's owner (schemas, targets' check_args, stream
    checks, Hydra's composition, the sweep preflight), in one fresh interpreter."""
    kinds = ("buffer.max_size=5", "buffer.groupby=label", "strategy=naive", "optimizer.lr=inf",
             "model.input_size=10", "benchmark.n_experiences=3", "device=cuda",
             "nosuchgroup=x", "buffer.max_size=[1,", "-m")
    cases = [["--help"], *[o for o, _, _ in BAD if any(o[0].startswith(k) for k in kinds)]]
    env = {"CL_RUNNER_OUTPUT_ROOT": str(tmp_path), "PYTHONPATH": str(REPO), "PATH": "/usr/bin"}
    proc = subprocess.run([sys.executable, "-c", PROBE, json.dumps(cases)], capture_output=True,
                          text=True, env=env, timeout=300)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["codes"] == [0] + [2] * (len(cases) - 1)
    assert result["torch"] is False and result["mlflow"] is False
    # the runner itself loads without torch: its writer imports MLflow while it imports torch
    assert result["runner_torch"] is False
