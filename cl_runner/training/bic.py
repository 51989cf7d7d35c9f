"""BiC, Bias Correction (Wu et al., "Large Scale Incremental Learning", CVPR 2019).

Avalanche's ``BiC`` / ``BiCPlugin`` (same arguments, defaults and order). Per experience:

1. Holdout: ``int(val_percentage * mem_size)`` samples, shared evenly by all classes seen
   so far, are kept aside per class (the first ones of each new class, in data order; older
   classes' holdouts shrink at random). They come on top of the memory and are never trained
   on in stage 1; the rest of the experience is the training set.
2. Stage 1: replay (``batch_size`` incoming + ``batch_size_mem`` memory samples per step, the
   memory is experience-balanced by default) with distillation from the model of the
   previous experience on the old classes' logits (temperature ``T``). With ``lamb=-1`` the
   loss is ``(1 - l) CE + l KD`` with ``l = old classes / all classes``, else
   ``CE + lamb KD``. From the third experience on, the old model's logits of the previous
   experience's classes go through the previous bias layer first.
3. Stage 2: a new bias layer ``alpha * z + beta`` on the newest classes' logits (alpha=1,
   beta=0) is trained on the union of the holdouts for ``stage_2_epochs`` (SGD ``lr``,
   momentum 0.9, lr x0.1 at epochs 50, 100, 150; loss CE + 0.1 beta^2 / 2) with the model
   frozen. Evaluation applies the latest bias layer.

Avalanche's distillation softmaxes the old model's logits over the BATCH (dim 0); that is the
default here too (``kd_softmax="batch"``); ``kd_softmax="classes"`` is the paper's (and
FACIL's and Mammoth's) softmax over the old classes.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import lazy_loader as lazy

from cl_runner.checks import (
    BOOL,
    FRACTION,
    NON_NEGATIVE_INT,
    NON_NEGATIVE_NUMBER,
    OPTIONAL_POSITIVE_INT,
    POSITIVE_NUMBER,
    Rule,
    SettingError,
    one_of,
)
from cl_runner.core import SupervisedPlugin
from cl_runner.training.rehearsal import (
    RehearsalTemplate,
    dataset_outputs,
    storage_or_default,
    with_experience,
)
from cl_runner.training.strategy import default_evaluator

if TYPE_CHECKING:
    from torch import Tensor

    from cl_runner.benchmarks.info import StreamInfo

torch = lazy.load("torch")

LAMB = Rule(lambda v: v == -1 or NON_NEGATIVE_NUMBER.test(v),
            "-1 (weight old classes / all classes) or a non-negative number")
KD_SOFTMAX = one_of(("batch", "classes"))
MILESTONES = (50, 100, 150)


def distillation_loss(new: Tensor, old: Tensor, temperature: float, over: str = "batch") -> Tensor:
    """BiC's distillation: cross-entropy of ``softmax(new / T)`` against the old model's
    ``softmax(old / T)``, the latter normalised over the batch (``over="batch"``, Avalanche)
    or over the classes (``"classes"``, the paper)."""
    targets = torch.softmax(old / temperature, dim=0 if over == "batch" else 1)
    return torch.nn.functional.cross_entropy(new / temperature, targets)


def _check_bic_args(
    val_percentage: Any = 0.1, T: Any = 2, stage_2_epochs: Any = 200,  # noqa: N803
    lamb: Any = -1, lr: Any = 0.1, kd_softmax: Any = "batch",
) -> None:
    FRACTION("val_percentage", val_percentage)
    POSITIVE_NUMBER("T", T)
    NON_NEGATIVE_INT("stage_2_epochs", stage_2_epochs)
    LAMB("lamb", lamb)
    POSITIVE_NUMBER("lr", lr)
    KD_SOFTMAX("kd_softmax", kd_softmax)


class BiCPlugin(SupervisedPlugin):
    """BiC's holdout, replay, distillation and bias correction (Avalanche's ``BiCPlugin``).

    ``num_workers`` is accepted for Avalanche's signature: stage 2 needs no loader here (the
    frozen model's logits on the holdout are computed once, then only the two bias
    parameters train). ``loss_terms``: ``classification`` and ``distillation``, the two
    weighted parts of the loss from the second experience on.
    """

    def __init__(
        self,
        mem_size: int = 2000,
        batch_size: int | None = None,
        batch_size_mem: int | None = None,
        task_balanced_dataloader: bool = False,
        storage_policy: Any = None,
        val_percentage: float = 0.1,
        T: float = 2,  # noqa: N803 - Avalanche's name
        stage_2_epochs: int = 200,
        lamb: float = -1,
        lr: float = 0.1,
        num_workers: int | str = "as_strategy",
        verbose: bool = False,
        *,
        kd_softmax: str = "batch",
    ) -> None:
        NON_NEGATIVE_INT("mem_size", mem_size)
        OPTIONAL_POSITIVE_INT("batch_size", batch_size)
        OPTIONAL_POSITIVE_INT("batch_size_mem", batch_size_mem)
        BOOL("task_balanced_dataloader", task_balanced_dataloader)
        _check_bic_args(val_percentage, T, stage_2_epochs, lamb, lr, kd_softmax)
        from cl_runner.buffers import ExperienceBalancedBuffer

        self.mem_size = mem_size
        self.batch_size, self.batch_size_mem = batch_size, batch_size_mem
        self.task_balanced_dataloader = task_balanced_dataloader
        self.storage_policy = storage_or_default(
            storage_policy, mem_size, lambda m: ExperienceBalancedBuffer(m, adaptive_size=True))
        self.val_percentage, self.T, self.stage_2_epochs = val_percentage, T, stage_2_epochs
        self.lamb, self.lr, self.num_workers, self.verbose = lamb, lr, num_workers, verbose
        self.kd_softmax = kd_softmax

        self.seen_classes: set[int] = set()
        self.class_to_tasks: dict[int, int] = {}
        self.val_buffer: dict[int, Any] = {}
        self.bias_layer: Any = None
        self.model_old: Any = None
        self._model_old_state: dict[str, Any] | None = None  # restored, not yet built
        self.is_first_experience = True
        self._train_part: Any = None

    # -- holdout ---------------------------------------------------------------------------
    def get_group_lengths(self, num_groups: int) -> list[int]:
        """Holdout size of each of ``num_groups`` classes (the first ones get the rest)."""
        total = int(self.val_percentage * self.mem_size)
        share, extra = divmod(total, num_groups)
        return [share + 1] * extra + [share] * (num_groups - extra)

    def before_training(self, strategy: Any, **kwargs: Any) -> None:
        if getattr(strategy.model, "takes_task_labels", False):
            raise ValueError("BiC supports class-incremental learning with a single-head model "
                             f"only, not {type(strategy.model).__name__}")

    def before_train_dataset_adaptation(self, strategy: Any, **kwargs: Any) -> None:
        from cl_runner.buffers import ReservoirSamplingBuffer
        from cl_runner.buffers.grouping import split_by_label
        from cl_runner.data.dataset import ClassificationDataset

        data = strategy.experience.dataset
        task_id = strategy.clock.train_exp_counter
        by_class = split_by_label(data, data.targets)
        for label in by_class:
            self.class_to_tasks[label] = task_id
        self.seen_classes |= by_class.keys()
        ordered = sorted(self.seen_classes)
        lengths = dict(zip(ordered, self.get_group_lengths(len(ordered)), strict=True))
        train_parts = []
        for label, part in by_class.items():
            n_val = min(lengths[label], len(part))
            holdout = part.subset(torch.arange(n_val))
            buffer = self.val_buffer.get(label)
            if buffer is None:
                buffer = self.val_buffer[label] = ReservoirSamplingBuffer(lengths[label])
            buffer.update_from_dataset(holdout)
            train_parts.append(part.subset(torch.arange(n_val, len(part))))
        for label, buffer in self.val_buffer.items():
            buffer.resize(strategy, lengths[label])
        self._train_part = ClassificationDataset.concat_all(train_parts) if train_parts else data

    def after_train_dataset_adaptation(self, strategy: Any, **kwargs: Any) -> None:
        strategy.adapted_dataset = self._train_part.train()

    # -- stage 1 ---------------------------------------------------------------------------
    def before_training_exp(
        self, strategy: Any, num_workers: int = 0, shuffle: bool = True, **kwargs: Any
    ) -> None:
        self._build_old_model(strategy)
        if self.bias_layer is not None:
            self.bias_layer.to(strategy.device)
            for param in self.bias_layer.parameters():
                param.requires_grad = False
        if len(self.storage_policy.buffer) == 0:
            return
        from cl_runner.data.loaders import ReplayDataLoader

        strategy.dataloader = ReplayDataLoader(
            strategy.adapted_dataset, self.storage_policy.buffer, oversample_small_tasks=True,
            batch_size=self.batch_size or strategy.train_mb_size,
            batch_size_mem=self.batch_size_mem or strategy.train_mb_size,
            task_balanced_dataloader=self.task_balanced_dataloader,
            num_workers=num_workers, shuffle=shuffle,
        )

    def _build_old_model(self, strategy: Any) -> None:
        if self._model_old_state is None:
            return
        self.model_old = self._frozen_copy(strategy.model)
        self.model_old.load_state_dict(self._model_old_state)
        self._model_old_state = None

    @staticmethod
    def _frozen_copy(model: Any) -> Any:
        old = copy.deepcopy(model)
        old.eval()
        for param in old.parameters():
            param.requires_grad = False
        return old

    def _classes_groups(self, strategy: Any) -> tuple[list[int], list[int], list[int]]:
        """Classes of experiences before the previous one, of the previous one, current."""
        now = strategy.experience.current_experience
        initial = sorted(c for c, t in self.class_to_tasks.items() if t < now - 1)
        previous = sorted(c for c, t in self.class_to_tasks.items() if t == now - 1)
        current = sorted(c for c, t in self.class_to_tasks.items() if t >= now)
        return initial, previous, current

    def before_backward(self, strategy: Any, **kwargs: Any) -> None:
        if self.model_old is None:
            return
        initial, previous, current = self._classes_groups(strategy)
        old = sorted(set(initial) | set(previous))
        if not old:
            return
        with torch.no_grad():
            out_old = self.model_old(strategy.mb_x)
            if initial and self.bias_layer is not None:
                out_old = self.bias_layer(out_old)
        kd = distillation_loss(strategy.mb_output[:, old], out_old[:, old], self.T,
                               self.kd_softmax)
        if self.lamb == -1:
            weight = len(old) / len(set(old) | set(current))
            classification, distillation = (1.0 - weight) * strategy.loss, weight * kd
        else:
            classification, distillation = strategy.loss, self.lamb * kd
        strategy.loss = classification + distillation
        strategy.loss_terms["classification"] = classification.detach()
        strategy.loss_terms["distillation"] = distillation.detach()

    # -- stage 2 ---------------------------------------------------------------------------
    def after_training_exp(self, strategy: Any, **kwargs: Any) -> None:
        self.is_first_experience = False
        self.model_old = self._frozen_copy(strategy.model)
        task_id = strategy.clock.train_exp_counter
        self.storage_policy.update(with_experience(strategy, self._train_part), **kwargs)
        if task_id > 0:
            self.bias_correction_step(strategy, task_id)

    def bias_correction_step(self, strategy: Any, task_id: int) -> None:
        """Train a new bias layer for the classes of experience ``task_id`` on the holdout."""
        from cl_runner.data.dataset import ClassificationDataset
        from cl_runner.models.networks import BiasLayer

        device = strategy.device
        classes = sorted(c for c, t in self.class_to_tasks.items() if t == task_id)
        layer = BiasLayer(classes).to(device)
        holdout = ClassificationDataset.concat_all([b.buffer for b in self.val_buffer.values()])
        if len(holdout) and self.stage_2_epochs:
            # the model is frozen and in eval mode: its logits are computed once
            logits = dataset_outputs(strategy.model, holdout, strategy.eval_mb_size, device,
                                     forward=lambda model, x, t: model(x))
            targets = holdout.targets.to(device)
            self._fit_bias_layer(layer, logits, targets, strategy.train_mb_size)
        layer.eval()
        for param in layer.parameters():
            param.requires_grad = False
        self.bias_layer = layer

    def _fit_bias_layer(self, layer: Any, logits: Tensor, targets: Tensor, batch_size: int) -> None:
        optimizer = torch.optim.SGD(layer.parameters(), lr=self.lr, momentum=0.9)
        scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, list(MILESTONES), gamma=0.1)
        n = len(targets)
        layer.train()
        for epoch in range(self.stage_2_epochs):
            order = torch.randperm(n).to(logits.device)
            total = 0.0
            for start in range(0, n, batch_size):
                batch = order[start:start + batch_size]
                out = layer(logits[batch])
                loss = torch.nn.functional.cross_entropy(out, targets[batch])
                loss = loss + 0.1 * layer.beta.sum() ** 2 / 2
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                if self.verbose:
                    total += float(loss) * len(batch)
            scheduler.step()
            quarter = self.stage_2_epochs // 4
            if self.verbose and quarter and (epoch + 1) % quarter == 0:
                print(f"| E {epoch + 1:3d} | stage 2 loss={total / n:.3f} |")
        if self.verbose:
            print(f"Bias correction done: alpha={float(layer.alpha):.4f}, "
                  f"beta={float(layer.beta):.4f}")

    # -- evaluation ------------------------------------------------------------------------
    def before_eval(self, strategy: Any, **kwargs: Any) -> None:
        if self.bias_layer is not None:
            self.bias_layer.to(strategy.device)

    def after_eval_forward(self, strategy: Any, **kwargs: Any) -> None:
        if not self.is_first_experience and self.bias_layer is not None:
            strategy.mb_output = self.bias_layer(strategy.mb_output)

    # -- checkpoints -----------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        old = self.model_old.state_dict() if self.model_old is not None else self._model_old_state
        bias = None
        if self.bias_layer is not None:
            bias = {k: v.cpu() for k, v in self.bias_layer.state_dict().items()}
        return {
            "storage_policy": self.storage_policy.state_dict(),
            "val_buffer": [[label, b.state_dict()] for label, b in self.val_buffer.items()],
            "class_to_tasks": [[c, t] for c, t in self.class_to_tasks.items()],
            "seen_classes": sorted(self.seen_classes),
            "is_first_experience": self.is_first_experience,
            "bias_layer": bias,
            "model_old": None if old is None else {k: v.cpu() for k, v in old.items()},
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        from cl_runner.buffers import ReservoirSamplingBuffer
        from cl_runner.models.networks import BiasLayer

        self.storage_policy.load_state_dict(state["storage_policy"])
        self.val_buffer = {}
        for label, buffer_state in state["val_buffer"]:
            buffer = ReservoirSamplingBuffer(buffer_state["max_size"])
            buffer.load_state_dict(buffer_state)
            self.val_buffer[int(label)] = buffer
        self.class_to_tasks = {int(c): int(t) for c, t in state["class_to_tasks"]}
        self.seen_classes = set(state["seen_classes"])
        self.is_first_experience = state["is_first_experience"]
        self.bias_layer = None
        if state["bias_layer"] is not None:
            self.bias_layer = BiasLayer(state["bias_layer"]["clss"].tolist())
            self.bias_layer.load_state_dict(state["bias_layer"])
            self.bias_layer.eval()
            for param in self.bias_layer.parameters():
                param.requires_grad = False
        self.model_old = None
        self._model_old_state = state["model_old"]


class BiC(RehearsalTemplate):
    """Naive plus ``BiCPlugin`` (Avalanche's ``BiC``), for class-incremental streams.

    Without ``storage_policy`` the memory is an ``ExperienceBalancedBuffer(mem_size)``; any
    storage policy works. The holdout (``val_percentage * mem_size`` samples) comes on top.
    """

    short_name = "bic"
    default_buffer = "experience_balanced"

    def __init__(
        self,
        model: Any,
        optimizer: Any,
        criterion: Any = None,
        mem_size: int = 200,
        val_percentage: float = 0.1,
        T: float = 2,  # noqa: N803 - Avalanche's name
        stage_2_epochs: int = 200,
        lamb: float = -1,
        lr: float = 0.1,
        train_mb_size: int = 1,
        train_epochs: int = 1,
        eval_mb_size: int | None = None,
        device: Any = None,
        plugins: Any = None,
        evaluator: Any = default_evaluator,
        eval_every: int = -1,
        peval_mode: str = "epoch",
        *,
        storage_policy: Any = None,
        kd_softmax: str = "batch",
    ) -> None:
        self.bic = BiCPlugin(mem_size, storage_policy=storage_policy,
                             val_percentage=val_percentage, T=T, stage_2_epochs=stage_2_epochs,
                             lamb=lamb, lr=lr, kd_softmax=kd_softmax)
        self.storage_policy = self.bic.storage_policy
        super().__init__(model, optimizer, criterion, train_mb_size, train_epochs, eval_mb_size,
                         device, [self.bic, *(plugins or [])], evaluator,
                         eval_every, peval_mode)

    @classmethod
    def check_args(
        cls, mem_size: Any = 200, val_percentage: Any = 0.1, T: Any = 2,  # noqa: N803
        stage_2_epochs: Any = 200, lamb: Any = -1, lr: Any = 0.1, kd_softmax: Any = "batch",
        **args: Any,
    ) -> None:
        super().check_args(**args)
        NON_NEGATIVE_INT("mem_size", mem_size)
        _check_bic_args(val_percentage, T, stage_2_epochs, lamb, lr, kd_softmax)

    @classmethod
    def check_stream(cls, args: Mapping[str, Any], stream: StreamInfo) -> None:
        super().check_stream(args, stream)
        if stream.n_tasks > 1:
            raise SettingError("", cls.short_name,
                               "a class-incremental stream (benchmark.return_task_id=false): "
                               "BiC corrects the bias of a single head")
