"""SCR: supervised contrastive replay (Mai et al., 2021).

Avalanche's ``SCR`` (same arguments and defaults, same order): every mini-batch is the
incoming samples plus ``batch_size_mem`` memory samples (a ``ReplayPlugin`` over a
class-balanced buffer, updated after each experience - each chunk online); the batch and an
augmented view of it go through the feature extractor and the projection head, and the loss
is the supervised contrastive loss (SupCon, all views as anchors) with temperature
``temperature`` scaled by ``temperature / 0.07``. Predictions are the nearest class mean of
the L2-normalised features (``SCRModel``); evaluation loss is the cross-entropy of those
scores.

Differences from Avalanche:

- augmentation draws its random crop and flip *per sample*, as batched tensor ops (one
  ``affine_grid`` + ``grid_sample``), like the original code's kornia pipeline; Avalanche
  calls torchvision transforms once on the whole batch (one crop for all). ``augmentations``
  is any batched callable, ``"crop_flip"`` (the default of ``cl-run``'s config) or
  ``"none"`` (Avalanche's default, the identity);
- class means are the paper's: recomputed from the memory (eval mode, no augmentation) when
  an evaluation starts after training, so every evaluation - anytime ones included - sees the
  current model; Avalanche blends them with momentum 0.5 after each experience (each chunk
  online: a forward pass over the whole memory per chunk) and its end-of-experience periodic
  evaluation sees stale means;
- ``model`` may also be a plain network with a ``features`` module (SimpleMLP, SimpleCNN):
  it is wrapped in an ``SCRModel`` with a ``projection_head(width, projection_size)`` whose
  parameters are added to ``optimizer`` (what ``cl-run`` does).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import lazy_loader as lazy

from cl_runner.checks import POSITIVE_INT, POSITIVE_NUMBER, SettingError
from cl_runner.core import SupervisedPlugin
from cl_runner.training.rehearsal import RehearsalTemplate, storage_or_default
from cl_runner.training.replay import ReplayPlugin
from cl_runner.training.strategy import RunComponents, default_evaluator

if TYPE_CHECKING:
    from torch import Tensor

    from cl_runner.benchmarks.info import StreamInfo

torch = lazy.load("torch")

BASE_TEMPERATURE = 0.07  # SupCon's, not exposed by Avalanche either
AUGMENTATIONS = ("crop_flip", "none")


def supcon_loss(features: Tensor, labels: Tensor, temperature: float = 0.1,
                base_temperature: float = BASE_TEMPERATURE) -> Tensor:
    """Supervised contrastive loss over ``features`` ``[N, views, D]`` (every view an anchor;
    positives: the other views with the same label), as Avalanche's ``SCRLoss``."""
    n, views = features.shape[:2]
    flat = torch.cat(torch.unbind(features, dim=1))  # [views * N, D], view-major
    logits = flat @ flat.T / temperature
    logits = logits - logits.max(dim=1, keepdim=True).values.detach()
    labels = labels.repeat(views)
    same = labels[:, None] == labels[None, :]
    not_self = ~torch.eye(len(flat), dtype=torch.bool, device=flat.device)
    positives = (same & not_self).float()
    exp = torch.exp(logits) * not_self
    log_prob = logits - torch.log(exp.sum(1, keepdim=True))
    mean_log_prob = (positives * log_prob).sum(1) / positives.sum(1)
    return -(temperature / base_temperature) * mean_log_prob.mean()


class CropFlip:
    """Per-sample random resized crop (area ``scale``, aspect ``ratio``, resized back to the
    input size) and horizontal flip (probability 1/2), batched: one ``affine_grid`` and one
    ``grid_sample`` for the whole batch. Inputs ``[N, C, H, W]``, or flat ``[N, s*s]``
    (viewed as one-channel ``s x s`` images)."""

    def __init__(self, scale: tuple[float, float] = (0.2, 1.0),
                 ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> None:
        self.scale, self.ratio = scale, ratio

    def __call__(self, x: Tensor) -> Tensor:
        flat = x.dim() == 2
        if flat:
            side = math.isqrt(x.shape[1])
            x = x.view(len(x), 1, side, side)
        n, dev = len(x), x.device
        area = torch.empty(n, device=dev).uniform_(*self.scale)
        log_ratio = torch.empty(n, device=dev).uniform_(math.log(self.ratio[0]),
                                                         math.log(self.ratio[1]))
        aspect = torch.exp(log_ratio)
        width = torch.sqrt(area * aspect).clamp(max=1.0)   # fractions of the image
        height = torch.sqrt(area / aspect).clamp(max=1.0)
        cx = (torch.rand(n, device=dev) * 2 - 1) * (1 - width)
        cy = (torch.rand(n, device=dev) * 2 - 1) * (1 - height)
        flip = torch.where(torch.rand(n, device=dev) < 0.5, -1.0, 1.0)
        theta = torch.zeros(n, 2, 3, device=dev)
        theta[:, 0, 0], theta[:, 0, 2] = width * flip, cx
        theta[:, 1, 1], theta[:, 1, 2] = height, cy
        grid = torch.nn.functional.affine_grid(theta, list(x.shape), align_corners=False)
        out = torch.nn.functional.grid_sample(x.float(), grid, mode="bilinear",
                                              padding_mode="border", align_corners=False)
        return out.view(n, -1) if flat else out

    def __repr__(self) -> str:
        return f"CropFlip(scale={self.scale}, ratio={self.ratio})"


def make_augmentation(augmentations: Any) -> Callable[[Tensor], Tensor]:
    """A batched callable from SCR's ``augmentations`` argument (a callable or a name)."""
    if callable(augmentations):
        return augmentations
    if augmentations in (None, "none"):
        return lambda x: x
    if augmentations == "crop_flip":
        return CropFlip()
    raise SettingError("augmentations", augmentations,
                       f"a batched callable or one of {', '.join(AUGMENTATIONS)}")


class _ClassMeans(SupervisedPlugin):
    """Recomputes the NCM class means from the memory when an evaluation follows training."""

    def __init__(self, strategy: SCR) -> None:
        self.strategy = strategy
        self.stale = True

    def after_training_iteration(self, strategy: Any, **kwargs: Any) -> None:
        self.stale = True

    def after_training_exp(self, strategy: Any, **kwargs: Any) -> None:
        self.stale = True  # the memory changed

    def before_eval(self, strategy: Any, **kwargs: Any) -> None:
        if self.stale:
            strategy.update_class_means()
            self.stale = False

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.stale = True

    def state_dict(self) -> dict[str, Any]:
        return {}


class SCR(RehearsalTemplate):
    """Supervised contrastive replay with a nearest-class-mean classifier (Avalanche's
    ``SCR``). ``model``: an ``SCRModel``, or a network with a ``features`` module (see the
    module docstring)."""

    short_name = "scr"
    buffer_hint = "any storage policy"

    def __init__(
        self,
        model: Any,
        optimizer: Any,
        augmentations: Any = "none",
        mem_size: int = 100,
        temperature: float = 0.1,
        train_mb_size: int = 1,
        batch_size_mem: int = 100,
        train_epochs: int = 1,
        eval_mb_size: int | None = 1,
        device: Any = None,
        plugins: Any = None,
        evaluator: Any = default_evaluator,
        eval_every: int = -1,
        peval_mode: str = "epoch",
        *,
        storage_policy: Any = None,
        projection_size: int = 128,
        input_shape: tuple[int, ...] | None = None,
        num_classes: int | None = None,
    ) -> None:
        SCR.check_args(temperature=temperature, batch_size_mem=batch_size_mem,
                       augmentations=augmentations, projection_size=projection_size)
        from cl_runner.buffers import ClassBalancedBuffer
        from cl_runner.models.networks import SCRModel

        if not isinstance(model, SCRModel):
            model = wrap_scr_model(model, optimizer, projection_size, input_shape, num_classes)
        self.augmentations = make_augmentation(augmentations)
        self.temperature = temperature
        policy = storage_or_default(storage_policy, mem_size,
                                    lambda m: ClassBalancedBuffer(max_size=m))
        self.replay_plugin = ReplayPlugin(mem_size, batch_size=train_mb_size,
                                          batch_size_mem=batch_size_mem, storage_policy=policy)
        self.storage_policy = policy
        self._means = _ClassMeans(self)
        self.eval_loss = torch.nn.CrossEntropyLoss()
        super().__init__(model, optimizer, None, train_mb_size, train_epochs, eval_mb_size,
                         device, [self.replay_plugin, self._means, *(plugins or [])], evaluator,
                         eval_every, peval_mode)

    @classmethod
    def check_args(cls, temperature: Any = 0.1, batch_size_mem: Any = 100,
                   augmentations: Any = "none", projection_size: Any = 128,
                   **args: Any) -> None:
        POSITIVE_NUMBER("temperature", temperature)
        POSITIVE_INT("batch_size_mem", batch_size_mem)
        POSITIVE_INT("projection_size", projection_size)
        if not callable(augmentations) and augmentations not in AUGMENTATIONS:
            raise SettingError("augmentations", augmentations,
                               f"one of {', '.join(AUGMENTATIONS)} (or a batched callable)")
        super().check_args(**args)

    @classmethod
    def check_stream(cls, args: Mapping[str, Any], stream: StreamInfo) -> None:
        super().check_stream(args, stream)
        shape = stream.input_shape
        square = len(shape) == 1 and math.isqrt(shape[0]) ** 2 == shape[0]
        if args.get("augmentations") == "crop_flip" and len(shape) != 3 and not square:
            raise SettingError("augmentations", "crop_flip",
                               f"none for inputs of shape {list(shape)} (crop_flip needs "
                               "images, or flat square ones)")

    @classmethod
    def from_run(cls, parts: RunComponents, **args: Any) -> SCR:
        args.setdefault("input_shape", tuple(parts.stream.input_shape))
        args.setdefault("num_classes", parts.stream.n_classes)
        return super().from_run(parts, **args)

    # -- training --------------------------------------------------------------------------
    def forward(self) -> Tensor:
        if not self.is_training:
            return super().forward()
        x = self.mb_x
        out = self.model(torch.cat([x, self.augmentations(x)]))
        n = len(x)
        return torch.stack([out[:n], out[n:]], dim=1)  # [N, 2 views, D]

    def criterion(self) -> Tensor:
        if self.is_training:
            return supcon_loss(self.mb_output, self.mb_y, self.temperature)
        return self.eval_loss(self.mb_output, self.mb_y)

    # -- nearest class mean ----------------------------------------------------------------
    def update_class_means(self) -> None:
        """Means of the memory's normalised features per class, re-normalised (zeros for
        classes without memory samples); eval mode, no augmentation, no gradient."""
        model = self.model
        memory = self.storage_policy.buffer.eval()
        width = model.ncm.num_classes or 0
        if len(memory) == 0:
            return
        modes = {m: m.training for m in model.modules()}
        model.eval()
        sums, counts = None, None
        try:
            with torch.no_grad():
                for start in range(0, len(memory), self.eval_mb_size):
                    pos = torch.arange(start, min(start + self.eval_mb_size, len(memory)),
                                       device=memory.device)
                    x, y, _ = memory.gather(pos)
                    f = model.features(x.to(self.device))
                    y = y.to(self.device)
                    classes = max(width, int(y.max()) + 1)
                    if sums is None or classes > len(sums):
                        grow = torch.zeros(classes, f.shape[1], device=self.device)
                        more = torch.zeros(classes, device=self.device)
                        if sums is not None:
                            grow[: len(sums)], more[: len(counts)] = sums, counts
                        sums, counts = grow, more
                    sums.index_add_(0, y, f)
                    counts.index_add_(0, y, torch.ones_like(y, dtype=f.dtype))
        finally:
            for module, mode in modes.items():
                module.train(mode)
        means = sums / counts.clamp(min=1)[:, None]
        means = torch.nn.functional.normalize(means, dim=1) * (counts > 0)[:, None]
        model.ncm.replace_class_means(means)


def wrap_scr_model(model: Any, optimizer: Any, projection_size: int,
                   input_shape: tuple[int, ...] | None, num_classes: int | None) -> Any:
    """``SCRModel(model.features, projection_head(width, projection_size))``; the head's
    parameters join ``optimizer``. ``width`` is measured with one zero input of
    ``input_shape`` (eval mode)."""
    from cl_runner.models.networks import SCRModel, projection_head

    features = getattr(model, "features", None)
    if features is None or input_shape is None:
        raise ValueError("SCR needs an SCRModel, or a network with a `features` module and "
                         "input_shape (cl-run passes the benchmark's)")
    device = next(model.parameters()).device
    modes = {m: m.training for m in features.modules()}
    features.eval()
    with torch.no_grad():
        width = features(torch.zeros(1, *input_shape, device=device)).shape[1]
    for module, mode in modes.items():
        module.train(mode)
    head = projection_head(width, projection_size).to(device)
    optimizer.add_param_group({"params": list(head.parameters())})
    return SCRModel(features, head, num_classes=num_classes)
