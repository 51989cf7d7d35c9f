"""GSS-greedy: gradient-based sample selection (Aljundi et al., NeurIPS 2019).

Avalanche's ``GSS_greedy`` / ``GSS_greedyPlugin`` (same arguments): the memory is filled
*every step* with incoming samples chosen for gradient diversity. Each memory sample keeps a
score, the largest cosine similarity between its gradient and the gradients of
``mem_strength`` random memory subsets (one per subset, each of the batch's size). While the
memory has room, incoming samples go in with their score (the very first ones with 0.1).
When it is full, the incoming batch's gradient is compared with the subsets' gradients; only
if it points away from all of them (max cosine < 0) are ``len(batch)`` memory candidates
drawn (probability rising with their score) and each replaced by an incoming sample with
probability ``((s_old + 1) / 2) / ((s_new + 1) / 2 + (s_old + 1) / 2)``. Scores are computed
in eval mode. Replay: ``[incoming | batch_size_mem memory samples]`` batches (Avalanche's
``ReplayDataLoader`` over a memory snapshot taken when each experience - each chunk online -
starts); the loss is the criterion on the joint batch.

Per-sample and per-subset gradients are computed together with ``torch.func`` (``vmap`` of
``grad``), never one backward pass per sample as in Avalanche.

Differences from Avalanche (its bugs, by reading and by running it; see the README notes):
only the *incoming* samples of a batch are candidates for the memory (Avalanche also offers
the replayed ones, which then appear twice); scoring gradients never leak into the training
step (Avalanche's last scoring backward adds its gradient to the update); with fewer memory
samples than the batch, the scores use one subset of all of them (Avalanche fails: max of an
empty sequence, so its online runs stop at the second chunk); the snapshot holds the filled
slots only (Avalanche replays zero images labelled 0 from empty slots); ``batch_size_mem``
can be set (Avalanche's loader default, 32, is the default). The memory holds storage
indices, like every buffer here (a replayed sample is transformed again; ``input_size`` is
accepted and unused). ``avalanche_bugs=True`` reproduces the first two bugs on purpose (every
sample of the joint batch is a candidate and sizes the memory subsets; the last scoring
gradient is added to the update), to compare with Avalanche's numbers.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import lazy_loader as lazy

from cl_runner.checks import BOOL, NON_NEGATIVE_INT, POSITIVE_INT
from cl_runner.core import SupervisedPlugin
from cl_runner.training.mir import virtual_forward
from cl_runner.training.strategy import SupervisedTemplate, default_evaluator

if TYPE_CHECKING:
    from torch import Tensor

    from cl_runner.data.dataset import ClassificationDataset

torch = lazy.load("torch")


class JointBatches:
    """``[current | memory]`` batches as ``[x, y, t, storage rows, is_current]``: ``batch_size``
    current samples (the epoch's length) plus ``batch_size_mem`` memory samples, the memory
    cycling in fresh permutations (Avalanche's ReplayDataLoader). Both parts must view the
    same storage; one gather per batch."""

    def __init__(self, current: ClassificationDataset, memory: ClassificationDataset | None,
                 batch_size: int, batch_size_mem: int, shuffle: bool = True,
                 drop_last: bool = False) -> None:
        from cl_runner.data.dataset import ClassificationDataset
        from cl_runner.data.sampling import GroupBatchSampler

        parts = [current] if memory is None or len(memory) == 0 else [current, memory]
        if len(parts) == 2 and not current.shares_storage(memory):
            raise ValueError("GSS_greedy's memory keeps storage indices: every experience must "
                             "come from the same storage (one benchmark stream)")
        self.n_current = len(current)
        self.joint = ClassificationDataset.concat_all(parts) if len(parts) == 2 else current
        self.rows = self.joint.storage_indices
        self.plan = GroupBatchSampler(
            [len(p) for p in parts], [batch_size, batch_size_mem][: len(parts)],
            terminators=[0], oversample=True, shuffle=shuffle, drop_last=drop_last,
            device=self.joint.device)

    def __len__(self) -> int:
        return len(self.plan)

    def __iter__(self) -> Iterator[list[Tensor]]:
        for positions in self.plan:
            x, y, t = self.joint.gather(positions)
            yield [x, y, t, self.rows[positions], positions < self.n_current]


Gradients = list["Tensor"]  # one [k, n_p] block per parameter: k gradients, never concatenated


def _blocks(grads: Mapping[str, Tensor] | Sequence[Tensor], k: int) -> Gradients:
    values = grads.values() if isinstance(grads, Mapping) else grads
    return [g.reshape(k, -1) for g in values]


def max_cosine(rows: Tensor | Gradients, references: Tensor | Gradients,
               eps: float = 1e-8) -> Tensor:
    """For each row of ``rows``, its largest cosine similarity to a row of ``references``
    (each a matrix, or the per-parameter blocks of one: the blocks are never joined)."""
    rows = [rows] if isinstance(rows, torch.Tensor) else rows
    references = [references] if isinstance(references, torch.Tensor) else references
    num = sum(r @ q.T for r, q in zip(rows, references, strict=True))
    row_norm = torch.sqrt(sum(torch.linalg.vector_norm(r, dim=1) ** 2 for r in rows))
    ref_norm = torch.sqrt(sum(torch.linalg.vector_norm(q, dim=1) ** 2 for q in references))
    return (num / (row_norm[:, None] * ref_norm[None, :]).clamp(min=eps)).max(dim=1).values


class GSS_greedyPlugin(SupervisedPlugin):  # noqa: N801 - Avalanche's class name
    """Greedy gradient-based sample selection into a memory of ``mem_size`` samples."""

    def __init__(self, mem_size: int = 200, mem_strength: int = 5,
                 input_size: Sequence[int] = (), *, batch_size_mem: int = 32,
                 avalanche_bugs: bool = False) -> None:
        self.check_args(mem_size=mem_size, mem_strength=mem_strength,
                        batch_size_mem=batch_size_mem)
        self.mem_size, self.mem_strength = mem_size, mem_strength
        self.input_size = list(input_size)
        self.batch_size_mem = batch_size_mem
        self.rows = torch.zeros(mem_size, dtype=torch.long)
        self.score = torch.zeros(mem_size)
        self.n = 0
        self.memory: ClassificationDataset | None = None  # snapshot of the filled slots
        self.avalanche_bugs = avalanche_bugs
        self._leak: list[Tensor] | None = None

    @classmethod
    def check_args(cls, mem_size: Any = 200, mem_strength: Any = 5, batch_size_mem: Any = 32,
                   **_: Any) -> None:
        NON_NEGATIVE_INT("mem_size", mem_size)
        POSITIVE_INT("mem_strength", mem_strength)
        POSITIVE_INT("batch_size_mem", batch_size_mem)

    # -- replay ----------------------------------------------------------------------------
    def before_training_exp(self, strategy: Any, shuffle: bool = True, drop_last: bool = False,
                            **kwargs: Any) -> None:
        current = strategy.adapted_dataset
        device = current.device
        self.rows, self.score = self.rows.to(device), self.score.to(device)
        self.memory = None
        if self.n:
            self.memory = current.storage_view().subset(self.rows[: self.n])
        strategy.dataloader = JointBatches(current, self.memory, strategy.train_mb_size,
                                           self.batch_size_mem, shuffle, drop_last)

    # -- gradients -------------------------------------------------------------------------
    def _params(self, model: Any) -> dict[str, Tensor]:
        return {k: p.detach() for k, p in model.named_parameters() if p.requires_grad}

    def _batch_grads(self, strategy: Any, x: Tensor, y: Tensor, t: Tensor) -> Gradients:
        """Gradient of the mean loss of each batch ``x[i]`` (shape ``[k, b, ...]``), as
        per-parameter blocks ``[k, n_p]``."""
        from torch.func import grad, vmap

        model, criterion = strategy.model, strategy._criterion
        if getattr(model, "takes_task_labels", False):  # data-dependent heads: no vmap
            params = [p for p in model.parameters() if p.requires_grad]
            rows = []
            for xi, yi, ti in zip(x, y, t, strict=True):
                gs = torch.autograd.grad(criterion(model(xi, ti), yi), params, allow_unused=True)
                rows.append([torch.zeros_like(p) if g is None else g
                             for p, g in zip(params, gs, strict=True)])
            return _blocks([torch.stack(per_param) for per_param in zip(*rows, strict=True)],
                           len(x))

        def loss(params: dict[str, Tensor], xb: Tensor, yb: Tensor, tb: Tensor) -> Tensor:
            return criterion(virtual_forward(model, params, xb, tb), yb)

        grads = vmap(grad(loss), in_dims=(None, 0, 0, 0))(self._params(model), x, y, t)
        return _blocks(grads, len(x))

    def _memory_grads(self, strategy: Any, batch: int) -> Gradients:
        """Gradients of ``min(mem_strength, n // batch)`` (at least one) disjoint random memory
        subsets of ``min(batch, n)`` samples (no augmentation)."""
        size = min(batch, self.n)
        count = min(self.mem_strength, max(1, self.n // batch))
        order = torch.randperm(self.n, device=self.rows.device)[: count * size]
        memory = self.memory_view(strategy).eval()
        x, y, t = memory.gather(order)
        device = strategy.device
        shape = (count, size)
        return self._batch_grads(strategy, x.to(device).view(*shape, *x.shape[1:]),
                                 y.to(device).view(shape), t.to(device).view(shape))

    def memory_view(self, strategy: Any) -> ClassificationDataset:
        """The filled slots as a dataset (current contents, not the experience's snapshot)."""
        return strategy.adapted_dataset.storage_view().subset(self.rows[: self.n])

    # -- selection -------------------------------------------------------------------------
    def after_forward(self, strategy: Any, **kwargs: Any) -> None:
        if not strategy.is_training or self.mem_size == 0:
            return
        chosen = slice(None) if self.avalanche_bugs else strategy.mbatch[4]
        x, y, t = strategy.mb_x[chosen], strategy.mb_y[chosen], strategy.mb_task_id[chosen]
        rows = strategy.mbatch[3][chosen].to(self.rows.device)
        if len(y) == 0:
            return
        model = strategy.model
        modes = {m: m.training for m in model.modules()}
        model.eval()
        self._leak = None
        try:
            if self.n < self.mem_size:
                self._fill(strategy, x, y, t, rows)
            else:
                self._replace(strategy, x, y, t, rows)
        finally:
            for module, mode in modes.items():
                module.train(mode)
        if self._leak is not None:  # Avalanche's last scoring gradient joins the update
            params = [p for p in model.parameters() if p.requires_grad]
            for p, block in zip(params, self._leak, strict=True):
                p.grad = block.reshape(p.shape).clone()

    def _fill(self, strategy: Any, x: Tensor, y: Tensor, t: Tensor, rows: Tensor) -> None:
        b = len(y)
        k = min(self.mem_size - self.n, b)
        x, y, t, rows = x[:k], y[:k], t[:k], rows[:k]
        if self.n == 0:
            scores = torch.full((k,), 0.1, device=self.score.device)
        else:
            references = self._memory_grads(strategy, b)
            per_sample = self._batch_grads(strategy, x.unsqueeze(1), y.unsqueeze(1),
                                           t.unsqueeze(1))
            scores = max_cosine(per_sample, references).to(self.score.device)
            self._leak = [g[-1] for g in per_sample] if self.avalanche_bugs else None
        self.rows[self.n : self.n + k] = rows
        self.score[self.n : self.n + k] = scores
        self.n += k

    def _replace(self, strategy: Any, x: Tensor, y: Tensor, t: Tensor, rows: Tensor) -> None:
        b = len(y)
        references = self._memory_grads(strategy, b)
        batch_grad = self._batch_grads(strategy, x.unsqueeze(0), y.unsqueeze(0), t.unsqueeze(0))
        if self.avalanche_bugs:
            self._leak = [g[0] for g in batch_grad]
        if not bool(max_cosine(batch_grad, references)[0] < 0):
            return
        score = self.score[: self.n]
        weights = (score - score.min()) / (score.max() - score.min() + 0.01)
        k = min(b, int((weights > 0).sum()))
        if k == 0:
            return
        candidates = torch.multinomial(weights, k, replacement=False)
        scored = b if self.avalanche_bugs else k  # Avalanche scores the whole batch
        per_sample = self._batch_grads(strategy, x[:scored].unsqueeze(1),
                                       y[:scored].unsqueeze(1), t[:scored].unsqueeze(1))
        if self.avalanche_bugs:
            self._leak = [g[-1] for g in per_sample]
        new = max_cosine(per_sample, references)[:k].to(score.device)
        odds = torch.stack([(new + 1) / 2, (score[candidates] + 1) / 2], dim=1).clamp(min=0)
        odds[:, 0] += odds.sum(1) == 0  # both scores -1: keep the memory sample
        replace = torch.multinomial(odds, 1).squeeze(1).bool()
        slots = candidates[replace]
        self.rows[slots] = rows[:k][replace]
        self.score[slots] = new[replace]

    def state_dict(self) -> dict[str, Any]:
        return {"rows": self.rows.cpu(), "score": self.score.cpu(), "n": self.n}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.rows, self.score, self.n = state["rows"], state["score"], state["n"]


class GSS_greedy(SupervisedTemplate):  # noqa: N801 - Avalanche's class name
    """Naive fine-tuning plus ``GSS_greedyPlugin`` (Avalanche's ``GSS_greedy``).

    The memory is the method's own (``mem_size``), not the ``buffer`` group's: use it with
    ``buffer=none`` (its config does).
    """

    short_name = "gss_greedy"

    def __init__(
        self,
        model: Any,
        optimizer: Any,
        criterion: Any = None,
        mem_size: int = 200,
        mem_strength: int = 1,
        input_size: Sequence[int] = (),
        train_mb_size: int = 1,
        train_epochs: int = 1,
        eval_mb_size: int | None = None,
        device: Any = None,
        plugins: Any = None,
        evaluator: Any = default_evaluator,
        eval_every: int = -1,
        peval_mode: str = "epoch",
        *,
        batch_size_mem: int = 32,
        avalanche_bugs: bool = False,
    ) -> None:
        self.gss = GSS_greedyPlugin(mem_size, mem_strength, input_size,
                                    batch_size_mem=batch_size_mem, avalanche_bugs=avalanche_bugs)
        # the method's plugin runs first (see cl_runner.training.rehearsal)
        super().__init__(model, optimizer, criterion, train_mb_size, train_epochs, eval_mb_size,
                         device, [self.gss, *(plugins or [])], evaluator, eval_every, peval_mode)

    @classmethod
    def check_args(cls, mem_size: Any = 200, mem_strength: Any = 1, batch_size_mem: Any = 32,
                   input_size: Any = (), avalanche_bugs: Any = False, **args: Any) -> None:
        GSS_greedyPlugin.check_args(mem_size=mem_size, mem_strength=mem_strength,
                                    batch_size_mem=batch_size_mem)
        BOOL("avalanche_bugs", avalanche_bugs)
        super().check_args(**args)
