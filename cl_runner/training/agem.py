"""A-GEM, Averaged Gradient Episodic Memory (Chaudhry et al., ICLR 2019).

Avalanche's ``AGEM`` / ``AGEMPlugin`` (same arguments, defaults and order). The memory never
enters the loss: before every step (once the memory holds data) the gradient g_ref of the
criterion on a memory batch is computed; after the step's backward pass, if the step's
gradient g conflicts with it (g . g_ref < 0) it is projected onto the half-space where it
does not:  g <- g - (g . g_ref / g_ref . g_ref) g_ref.  The memory batch takes
``sample_size // groups`` samples from every experience group of the memory, walking each
group in a fixed order (Avalanche's unshuffled ``GroupBalancedInfiniteDataLoader``).

Avalanche's own memory adds a random subset of ``patterns_per_exp`` samples of each
experience as one more group and never drops any (``PatternsPerExperienceBuffer``); under
``cl-run`` the memory is the ``buffer`` group's (experience-grouped) storage policy.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import lazy_loader as lazy

from cl_runner.buffers.balanced import ExperienceBalancedBuffer
from cl_runner.checks import NON_NEGATIVE_INT, POSITIVE_INT, SettingError
from cl_runner.core import SupervisedPlugin
from cl_runner.models.tasks import forward_with_tasks
from cl_runner.training.rehearsal import RehearsalTemplate
from cl_runner.training.strategy import RunComponents, SupervisedTemplate, default_evaluator

if TYPE_CHECKING:
    from torch import Tensor

    from cl_runner.benchmarks.info import StreamInfo

torch = lazy.load("torch")


class PatternsPerExperienceBuffer(ExperienceBalancedBuffer):
    """Avalanche A-GEM's memory: every update adds a uniform random subset of
    ``patterns_per_experience`` samples (all of them if fewer) as one more group; nothing is
    ever dropped, so ``max_size`` grows by ``patterns_per_experience`` per experience."""

    short_name = "patterns_per_experience"

    def __init__(self, patterns_per_experience: int) -> None:
        super().__init__(max_size=0)
        self.patterns_per_experience = NON_NEGATIVE_INT(
            "patterns_per_experience", patterns_per_experience)

    def get_group_lengths(self, num_groups: int) -> list[int]:
        return [self.patterns_per_experience] * num_groups

    def post_adapt(self, agent: Any, exp: Any) -> None:
        super().post_adapt(agent, exp)
        self.max_size = self.patterns_per_experience * len(self.buffer_groups)


def project_gradient(g: Tensor, g_ref: Tensor) -> Tensor:
    """A-GEM's projection: ``g`` if ``g . g_ref >= 0``, else ``g`` minus its component along
    ``g_ref`` (so that the result is orthogonal to ``g_ref``). No host sync."""
    dot = torch.dot(g, g_ref)
    scale = torch.clamp(dot, max=0) / torch.clamp(torch.dot(g_ref, g_ref), min=1e-30)
    return g - scale * g_ref


def project_gradients_(grads: list[Tensor], refs: list[Tensor], ref_sq: Tensor) -> None:
    """``project_gradient`` on gradients held per parameter, in place (no concatenation):
    ``grads[i] -= scale * refs[i]`` with one scale for all, 0 when there is no conflict.
    ``ref_sq`` is the squared norm of the whole reference gradient."""
    dot = torch.stack([torch.dot(g.reshape(-1), r.reshape(-1))
                       for g, r in zip(grads, refs, strict=True)]).sum()
    scale = torch.clamp(dot, max=0) / torch.clamp(ref_sq, min=1e-30)
    for g, r in zip(grads, refs, strict=True):
        g.addcmul_(r, scale, value=-1)


class AGEMPlugin(SupervisedPlugin):
    """A-GEM's memory and gradient projection (Avalanche's ``AGEMPlugin``).

    ``storage_policy`` replaces Avalanche's memory (``PatternsPerExperienceBuffer``); the
    reference batch is balanced over its groups (``buffer_datasets``), or drawn from its
    whole ``buffer`` when it has no groups. ``strategy.loss_terms["reference"]`` is the
    criterion on the reference batch (not part of the loss).
    """

    def __init__(
        self, patterns_per_experience: int, sample_size: int, *, storage_policy: Any = None
    ) -> None:
        POSITIVE_INT("sample_size", sample_size)
        self.patterns_per_experience = int(patterns_per_experience)
        self.sample_size = int(sample_size)
        if storage_policy is None:
            storage_policy = PatternsPerExperienceBuffer(self.patterns_per_experience)
        self.storage_policy = storage_policy
        self.buffer_dliter: Iterator[Any] | None = None
        self._reference: list[Tensor] | None = None  # per parameter, this step's
        self._reference_sq: Tensor | None = None

    def _groups(self) -> list[Any]:
        groups = getattr(self.storage_policy, "buffer_datasets", None)
        if groups is None:
            groups = [self.storage_policy.buffer]
        return [g for g in groups if len(g)]

    def _make_sampler(self) -> None:
        from cl_runner.data.loaders import GroupBalancedInfiniteDataLoader

        groups = self._groups()
        if not groups:
            self.buffer_dliter = None
            return
        per_group = self.sample_size // len(groups)
        if per_group < 1:
            raise ValueError(f"A-GEM: sample_size={self.sample_size} is smaller than the "
                             f"{len(groups)} memory groups (one sample per group at least)")
        self.buffer_dliter = iter(GroupBalancedInfiniteDataLoader(groups, batch_size=per_group))

    @property
    def reference_gradients(self) -> Tensor | None:
        """This step's reference gradient as one vector (Avalanche's attribute), or None."""
        if self._reference is None:
            return None
        return torch.cat([r.reshape(-1) for r in self._reference])

    def before_training_iteration(self, strategy: Any, **kwargs: Any) -> None:
        self._reference = None
        if self.buffer_dliter is None:
            return
        strategy.model.train()
        x, y, t = (v.to(strategy.device, non_blocking=True) for v in next(self.buffer_dliter))
        params = list(strategy.model.parameters())
        loss = strategy._criterion(forward_with_tasks(strategy.model, x, t), y)
        trainable = [p for p in params if p.requires_grad]
        grads = iter(torch.autograd.grad(loss, trainable, allow_unused=True))
        self._reference = [g if g is not None else torch.zeros_like(p) for p, g in
                           ((p, next(grads) if p.requires_grad else None) for p in params)]
        self._reference_sq = torch.stack([torch.dot(r.reshape(-1), r.reshape(-1))
                                          for r in self._reference]).sum()
        strategy.loss_terms["reference"] = loss.detach()

    def after_backward(self, strategy: Any, **kwargs: Any) -> None:
        if self._reference is None:
            return
        pairs = [(p.grad, r) for p, r in zip(strategy.model.parameters(), self._reference,
                                             strict=True) if p.grad is not None]
        if pairs:
            with torch.no_grad():
                project_gradients_([g for g, _ in pairs], [r for _, r in pairs],
                                   self._reference_sq)

    def after_training_exp(self, strategy: Any, **kwargs: Any) -> None:
        self.storage_policy.update(strategy, **kwargs)
        self._make_sampler()

    def state_dict(self) -> dict[str, Any]:
        return {"storage_policy": self.storage_policy.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.storage_policy.load_state_dict(state["storage_policy"])
        self._make_sampler()  # Avalanche makes a new sampler after every memory update


class AGEM(RehearsalTemplate):
    """Naive plus ``AGEMPlugin`` (Avalanche's ``AGEM``).

    Under ``cl-run`` the memory is the ``buffer`` group's storage policy, which must group
    its samples by experience (``buffer=experience_balanced``, the default, or
    ``buffer=parametric buffer.groupby=experience``); ``patterns_per_exp`` is then
    ``buffer.max_size // n_experiences`` (what a fixed-size experience-balanced buffer holds).
    """

    short_name = "agem"
    memory_arg = "patterns_per_exp"
    buffer_groups = ("experience",)
    buffer_hint = ("an experience-grouped memory: experience_balanced, or parametric with "
                   "buffer.groupby=experience")
    default_buffer = "experience_balanced"

    def __init__(
        self,
        model: Any,
        optimizer: Any,
        criterion: Any,
        patterns_per_exp: int,
        sample_size: int = 64,
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
    ) -> None:
        AGEM.check_args(patterns_per_exp=patterns_per_exp, sample_size=sample_size)
        self.agem = AGEMPlugin(patterns_per_exp, sample_size, storage_policy=storage_policy)
        self.storage_policy = self.agem.storage_policy
        super().__init__(model, optimizer, criterion, train_mb_size, train_epochs, eval_mb_size,
                         device, [self.agem, *(plugins or [])], evaluator,
                         eval_every, peval_mode)

    @classmethod
    def check_args(cls, patterns_per_exp: Any = 0, sample_size: Any = 64, **args: Any) -> None:
        super().check_args(**args)
        NON_NEGATIVE_INT("patterns_per_exp", patterns_per_exp)
        POSITIVE_INT("sample_size", sample_size)

    @classmethod
    def check_stream(cls, args: Mapping[str, Any], stream: StreamInfo) -> None:
        super().check_stream(args, stream)
        sample_size = args.get("sample_size", 64)
        if sample_size < stream.n_experiences:
            raise SettingError("sample_size", sample_size,
                               f"at least {stream.n_experiences}: one memory sample from each "
                               f"of the {stream.n_experiences} experiences")

    @classmethod
    def from_run(cls, parts: RunComponents, **args: Any) -> SupervisedTemplate:
        buffer = parts.buffer
        return cls(model=parts.model, optimizer=parts.optimizer, criterion=None,
                   patterns_per_exp=buffer.max_size // parts.stream.n_experiences,
                   device=parts.device, plugins=parts.plugins, evaluator=parts.evaluator,
                   storage_policy=buffer, **args)
