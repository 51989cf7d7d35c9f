"""Avalanche's classic vision benchmarks on tensor storage.

Images are loaded once through torchvision (torchvision_sources: verification, offline mirrors,
tensor cache) and held as uint8 ``(N, C, H, W)`` storage; normalisation is the datasets' batched
``transform``, and CIFAR's crop-and-flip augmentation their batched ``train_transform`` (test
data is never augmented). Models therefore see float ``(C, H, W)`` inputs: ``(1, 28, 28)`` for
the MNIST family, ``(3, 32, 32)`` for CIFAR.

Data location arguments, shared by every constructor: ``root`` (torchvision's layout below it;
default ``$CL_RUNNER_DATA_ROOT`` or ``./data``), ``download`` (torchvision's download),
``mirror`` (a local folder with the original files, used when ``root`` lacks them) and
``verify_checksums`` (official files only; False for custom files in the same format).
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lazy_loader as lazy

from cl_runner.benchmarks.base import (
    Benchmark,
    Experience,
    Stream,
    check_class_ids_options,
    check_class_split,
    class_split_info,
    declared,
    nc_benchmark,
)
from cl_runner.benchmarks.batch_transforms import NormalizePixels, RandomCropFlip
from cl_runner.benchmarks.info import StreamInfo
from cl_runner.benchmarks.torchvision_sources import load_vision_tensors
from cl_runner.benchmarks.user_transforms import DEFAULT_TRANSFORM, Chain, batch_transform
from cl_runner.checks import BOOL, POSITIVE_INT, SettingError

torch = lazy.load("torch")
np = lazy.load("numpy")

CIFAR_PADDING = 4
MNIST_SHAPE, CIFAR_SHAPE = (1, 28, 28), (3, 32, 32)
# (mean, std) per channel on the 0..1 scale, as in Avalanche's default transforms
MNIST_STATS = ((0.1307,), (0.3081,))
FMNIST_STATS = ((0.2860,), (0.3530,))
CIFAR10_STATS = ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010))
CIFAR100_STATS = ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762))

PathLike = str | Path | None
# Where Debian's dataset-fashion-mnist package puts the original files (skipped if absent).
FMNIST_MIRROR = os.environ.get("CL_RUNNER_FMNIST_MIRROR", "/usr/share/datasets/fashion-mnist")


@dataclass(frozen=True)
class VisionSplit:
    """A class-incremental benchmark over one torchvision dataset.

    ``stats``: per-channel (mean, std) on the 0..1 scale, as in Avalanche's default
    transforms; ``augment``: CIFAR's crop-and-flip on training batches; ``half_arg``: the name
    of Avalanche's "first experience holds half the classes" flag for this dataset.
    """

    name: str
    source: str
    n_classes: int
    input_shape: tuple[int, ...]
    stats: tuple[tuple[float, ...], tuple[float, ...]]
    augment: bool
    default_experiences: int
    doc: str
    default_mirror: str | None = None
    half_arg: str | None = None

    def _split_args(self, args: dict[str, Any]) -> dict[str, Any]:
        """The class-split settings ``args`` ask for (half flag -> per_exp_classes)."""
        half = bool(args.get(self.half_arg, False)) if self.half_arg else False
        return {"per_exp_classes": {0: self.n_classes // 2} if half else None}

    def check_args(self, n_experiences: Any = None, **args: Any) -> None:
        n_experiences = self.default_experiences if n_experiences is None else n_experiences
        if self.half_arg:
            BOOL(self.half_arg, args.get(self.half_arg, False))
        BOOL("shuffle", args.get("shuffle", True))
        check_class_ids_options(args.get("class_ids_from_zero_from_first_exp", False),
                                args.get("class_ids_from_zero_in_each_exp", False))
        check_class_split(self.n_classes, n_experiences, args.get("fixed_class_order"),
                          args.get("seed"), **self._split_args(args))
        root = resolve_root(args.get("root"), args.get("dataset_root"))
        check_data_location(root, args.get("download", False), args.get("mirror"))

    def info(self, n_experiences: int | None = None, *, return_task_id: bool = False,
             fixed_class_order: Sequence[int] | None = None, **args: Any) -> StreamInfo:
        n_experiences = self.default_experiences if n_experiences is None else n_experiences
        return class_split_info(self.n_classes, self.input_shape, n_experiences,
                                return_task_id, fixed_class_order)

    def transforms(self, train_transform: Any, eval_transform: Any,
                   test: bool = False) -> dict[str, Any]:
        """Storage transforms: ours (batched normalisation, CIFAR augmentation on training
        data only) for Avalanche's defaults; a user transform replaces its group's, in both
        streams as in Avalanche (see ``user_transforms``)."""
        normalise = NormalizePixels(*self.stats)
        augmentation = None
        if self.augment:
            black = [-m / s for m, s in zip(*self.stats, strict=True)]
            augmentation = RandomCropFlip(CIFAR_PADDING, fill=black)
        if train_transform is DEFAULT_TRANSFORM and eval_transform is DEFAULT_TRANSFORM:
            return {"transform": normalise, "train_transform": None if test else augmentation}
        train = (Chain([normalise, *([augmentation] if augmentation else [])])
                 if train_transform is DEFAULT_TRANSFORM
                 else batch_transform(train_transform, scale_uint8=True))
        evaluation = (normalise if eval_transform is DEFAULT_TRANSFORM
                      else batch_transform(eval_transform, scale_uint8=True))
        return {"train_transform": train, "eval_transform": evaluation}

    def build(self, n_experiences: int, args: dict[str, Any]) -> Benchmark:
        from cl_runner.data.dataset import ClassificationDataset

        # check the split before loading: a bad setting should not wait for (or hide behind) data
        self.check_args(n_experiences, **args)
        location = {k: args[k] for k in ("download", "mirror", "verify_checksums")}
        root = resolve_root(args["root"], args["dataset_root"])
        data = load_vision_tensors(self.source, root, **location)
        transforms = self.transforms(args["train_transform"], args["eval_transform"])
        return nc_benchmark(
            ClassificationDataset(data.train_x, data.train_y, **transforms),
            ClassificationDataset(data.test_x, data.test_y, **self.transforms(
                args["train_transform"], args["eval_transform"], test=True)),
            n_experiences, args["return_task_id"], n_classes=self.n_classes, seed=args["seed"],
            shuffle=args["shuffle"], fixed_class_order=args["fixed_class_order"],
            class_ids_from_zero_from_first_exp=args["class_ids_from_zero_from_first_exp"],
            class_ids_from_zero_in_each_exp=args["class_ids_from_zero_in_each_exp"],
            name=f"split_{self.source}", **self._split_args(args),
        )

    def constructor(self) -> Callable[..., Benchmark]:
        """The public constructor (Avalanche's name, arguments and their order, then ours,
        keyword-only), carrying the declarations."""
        spec = self
        keyword = inspect.Parameter.KEYWORD_ONLY
        params = [inspect.Parameter("n_experiences", inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                    default=spec.default_experiences, annotation=int)]
        half = [(spec.half_arg, False, bool)] if spec.half_arg else []
        for name, default, kind in [*half, *_SPLIT_KEYWORDS, *_LOCATION_KEYWORDS(spec)]:
            params.append(inspect.Parameter(name, keyword, default=default, annotation=kind))
        signature = inspect.Signature(params, return_annotation=Benchmark)
        defaults = {p.name: p.default for p in params[1:]}

        @declared(info=spec.info, check_args=spec.check_args)
        def constructor(n_experiences: int = spec.default_experiences, **kwargs: Any) -> Benchmark:
            unknown = sorted(set(kwargs) - set(defaults))
            if unknown:
                raise TypeError(f"{spec.name}() got an unexpected keyword argument "
                                f"{unknown[0]!r}")
            return spec.build(n_experiences, {**defaults, **kwargs})

        constructor.__signature__ = signature  # type: ignore[attr-defined]
        constructor.__name__ = constructor.__qualname__ = spec.name
        constructor.__doc__ = spec.doc
        return constructor


# Avalanche's keyword-only arguments of the classic splits, in its order (after the half flag)
_SPLIT_KEYWORDS: list[tuple[str, Any, Any]] = [
    ("return_task_id", False, bool),
    ("seed", None, int | None),
    ("fixed_class_order", None, Sequence[int] | None),
    ("shuffle", True, bool),
    ("class_ids_from_zero_in_each_exp", False, bool),
    ("class_ids_from_zero_from_first_exp", False, bool),
    ("train_transform", DEFAULT_TRANSFORM, Any),
    ("eval_transform", DEFAULT_TRANSFORM, Any),
    ("dataset_root", None, PathLike),
]


def _LOCATION_KEYWORDS(spec: VisionSplit) -> list[tuple[str, Any, Any]]:  # noqa: N802
    """Ours, after Avalanche's: where the files are and how they are checked."""
    return [("root", None, PathLike), ("download", False, bool),
            ("mirror", spec.default_mirror, PathLike), ("verify_checksums", True, bool)]


def resolve_root(root: Any, dataset_root: Any) -> Any:
    """``root`` and Avalanche's name for it, ``dataset_root``: either, or both if equal."""
    if root is not None and dataset_root is not None and str(root) != str(dataset_root):
        raise SettingError("dataset_root", str(dataset_root),
                           f"null or the same folder as root ({root}): they name one setting")
    return dataset_root if root is None else root


def check_data_location(root: Any, download: Any, mirror: Any) -> None:
    """Refuse a ``root`` that does not exist when nothing could fill it."""
    offline = not download and not mirror
    if root and offline and not Path(str(root)).exists():
        raise SettingError("root", str(root),
                           "an existing folder when download=false "
                           "(set download=true or mirror=FOLDER)")


_LOCATION_DOC = """

Avalanche's arguments: ``seed`` (class order; None: the global torch RNG), ``shuffle`` (False:
ascending class order), ``fixed_class_order``, ``class_ids_from_zero_in_each_exp`` /
``class_ids_from_zero_from_first_exp`` (label remapping), ``train_transform`` /
``eval_transform`` (default: normalisation, plus CIFAR's crop-and-flip in training, batched;
another transform replaces its group's and runs as ``user_transforms`` describes),
``dataset_root`` (= ``root``).

Data location: ``root`` (torchvision's layout below it; default ``$CL_RUNNER_DATA_ROOT`` or
``./data``), ``download`` (torchvision's download), ``mirror`` (a local folder with the
original files, used when ``root`` lacks them), ``verify_checksums`` (official files only;
False for custom files in the same format)."""

SplitMNIST = VisionSplit(
    "SplitMNIST", "mnist", 10, MNIST_SHAPE, MNIST_STATS, False, 5,
    "MNIST's 10 digits in ``n_experiences`` class-incremental experiences." + _LOCATION_DOC,
).constructor()
SplitFMNIST = VisionSplit(
    "SplitFMNIST", "fmnist", 10, MNIST_SHAPE, FMNIST_STATS, False, 5,
    "Fashion-MNIST's 10 clothing classes in ``n_experiences`` class-incremental experiences."
    " ``mirror`` defaults to Debian's ``dataset-fashion-mnist`` folder (or "
    "``$CL_RUNNER_FMNIST_MIRROR``), so the seed tutorial runs offline where that package is."
    " ``first_batch_with_half_classes``: the first experience holds 5 classes."
    + _LOCATION_DOC,
    default_mirror=FMNIST_MIRROR, half_arg="first_batch_with_half_classes",
).constructor()
SplitCIFAR10 = VisionSplit(
    "SplitCIFAR10", "cifar10", 10, CIFAR_SHAPE, CIFAR10_STATS, True, 5,
    "CIFAR-10 in ``n_experiences`` experiences; training batches get random crop + flip."
    " ``first_exp_with_half_classes``: the first experience holds 5 classes."
    + _LOCATION_DOC, half_arg="first_exp_with_half_classes",
).constructor()
SplitCIFAR100 = VisionSplit(
    "SplitCIFAR100", "cifar100", 100, CIFAR_SHAPE, CIFAR100_STATS, True, 10,
    "CIFAR-100 (fine labels) in ``n_experiences`` experiences; training batches augmented."
    " ``first_exp_with_half_classes``: the first experience holds 50 classes."
    + _LOCATION_DOC, half_arg="first_exp_with_half_classes",
).constructor()


def _permuted_check(n_experiences: Any = 10, *, seed: Any = None, root: Any = None,
                    download: Any = False, mirror: Any = None, dataset_root: Any = None,
                    **_: Any) -> None:
    POSITIVE_INT("n_experiences", n_experiences)
    check_class_split(10, 1, None, seed)
    check_data_location(resolve_root(root, dataset_root), download, mirror)


def _permuted_info(n_experiences: int = 10, *, return_task_id: bool = False,
                   **_: Any) -> StreamInfo:
    return StreamInfo(10, n_experiences, n_experiences if return_task_id else 1, MNIST_SHAPE)


@declared(info=_permuted_info, check_args=_permuted_check)
def PermutedMNIST(  # noqa: N802 - benchmark constructors use Avalanche's class-style names
    n_experiences: int = 10,
    *,
    return_task_id: bool = False,
    seed: int | None = None,
    train_transform: Any = DEFAULT_TRANSFORM,
    eval_transform: Any = DEFAULT_TRANSFORM,
    dataset_root: PathLike = None,
    root: PathLike = None,
    download: bool = False,
    mirror: PathLike = None,
    verify_checksums: bool = True,
) -> Benchmark:
    """All 10 MNIST classes in every experience, each with its own fixed pixel permutation.

    Avalanche's arguments in its order; ``train_transform`` / ``eval_transform`` (default:
    normalisation) act after the permutation; ``dataset_root`` is ``root``.

    The permutations are Avalanche's: ``numpy.random.RandomState(seed).permutation(784)`` drawn
    once per experience, the first one included (``seed=None``: unseeded). Each stream is one
    uint8 storage holding every experience's permuted copy (``n_experiences`` x 55 MB for MNIST)
    and experiences are index views on it. A lazily applied per-experience permutation would
    store the images once, but a transform belongs to a dataset, not to a sample, so a replay
    buffer mixing experiences would permute old samples with the current experience's
    permutation; materialised copies make every sample carry its own, and replay stays
    index-only on shared storage.
    """
    _permuted_check(n_experiences, seed=seed, root=root, dataset_root=dataset_root,
                    download=download, mirror=mirror)
    data = load_vision_tensors(
        "mnist", resolve_root(root, dataset_root), download=download, mirror=mirror,
        verify_checksums=verify_checksums,
    )
    rng = np.random.RandomState(seed)
    n_pixels = data.train_x[0].numel()
    perms = [torch.from_numpy(rng.permutation(n_pixels)) for _ in range(n_experiences)]
    transforms = VisionSplit("PermutedMNIST", "mnist", 10, MNIST_SHAPE, MNIST_STATS, False, 10,
                             "").transforms(train_transform, eval_transform)
    name = f"permuted_mnist/seed={seed}" + ("/tasks" if return_task_id else "")
    streams = [
        _permuted_stream(f"{name}/{stream}", stream, x, y, perms, return_task_id, transforms)
        for stream, x, y in (("train", data.train_x, data.train_y),
                             ("test", data.test_x, data.test_y))
    ]
    return Benchmark(
        *streams, n_classes=10, classes_order=list(range(10)), return_task_id=return_task_id,
        name="permuted_mnist",
    )


def _permuted_stream(
    storage_name: str,
    name: str,
    x: torch.Tensor,
    y: torch.Tensor,
    perms: list[torch.Tensor],
    return_task_id: bool,
    transforms: dict[str, Any],
) -> Stream:
    from cl_runner.data.dataset import ClassificationDataset

    n = len(y)
    flat = x.flatten(1)
    storage = torch.empty((len(perms) * n, flat.shape[1]), dtype=x.dtype)
    for i, perm in enumerate(perms):
        storage[i * n : (i + 1) * n] = flat[:, perm]
    tasks = torch.arange(len(perms)).repeat_interleave(n) if return_task_id else None
    data = ClassificationDataset(
        storage.view(-1, *x.shape[1:]), y.repeat(len(perms)), tasks, **transforms,
        name=storage_name,
    )
    if name != "train":
        data = data.eval()
    classes = sorted(y.unique().tolist())
    return Stream(name, [
        Experience(
            data.subset(torch.arange(i * n, (i + 1) * n)), i, classes,
            i if return_task_id else 0, name,
        )
        for i in range(len(perms))
    ])
