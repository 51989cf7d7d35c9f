"""Your own data from the command line: a tensors file, or a folder of images.

``benchmark=tensors benchmark.path=FILE``: a ``.npz`` (numpy) or ``.pt`` (``torch.save``) file
holding either ``train_x, train_y, test_x, test_y`` (optionally ``train_task``,
``test_task``) or ``x, y`` (optionally ``task``; a stratified ``test_size`` part is held out).
``y`` holds class ids ``0..C-1``, every one present in the training part. Without task labels
the classes are split into ``n_experiences`` like the built-in benchmarks (class order from
``seed``, or ``fixed_class_order``; ``return_task_id`` for task-incremental); with task labels
each task is one experience (ascending), carrying its label when ``return_task_id`` is true.

``benchmark=image_folder benchmark.root=DIR``: torchvision's ``ImageFolder`` layout,
``DIR/train/CLASS/*.png`` and ``DIR/test/CLASS/*.png``, or ``DIR/CLASS/*.png`` with a
stratified ``test_size`` part held out. Classes are the sorted folder names (ids in that
order); images are decoded once, resized to ``size`` x ``size`` with ``channels`` 3 (RGB) or
1 (grey), and cached as uint8 tensors under ``cache_root/cl_runner_cache``.

Inputs are standardised with the training part's statistics (per channel for images) by a
batched transform. Everything a setting is checked against is read without loading the data
or torch: npz headers and labels, the pickle of a ``.pt`` file (tensor data read only for the
labels), the folder listing.
"""

from __future__ import annotations

import hashlib
import pickle
import zipfile
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import lazy_loader as lazy

from cl_runner.benchmarks.base import (
    Benchmark,
    Experience,
    Stream,
    check_class_split,
    class_split_info,
    declared,
    nc_benchmark,
)
from cl_runner.benchmarks.info import StreamInfo
from cl_runner.checks import BOOL, POSITIVE_INT, Rule, SettingError, is_number, one_of

if TYPE_CHECKING:
    from torch import Tensor

torch = lazy.load("torch")
np = lazy.load("numpy")

TEST_SIZE = Rule(lambda v: is_number(v) and 0 < v < 1, "a number in (0, 1)")
SPLIT_KEYS = ("train_x", "train_y", "test_x", "test_y")
SPLIT_OPTIONAL = ("train_task", "test_task")
SINGLE_KEYS, SINGLE_OPTIONAL = ("x", "y"), ("task",)
SUFFIXES = (".npz", ".pt", ".pth")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
CHANNELS = one_of((1, 3))


# -- reading arrays without torch -----------------------------------------------------------------
_STORAGE_DTYPES = {
    "DoubleStorage": "float64", "FloatStorage": "float32", "HalfStorage": "float16",
    "LongStorage": "int64", "IntStorage": "int32", "ShortStorage": "int16",
    "CharStorage": "int8", "ByteStorage": "uint8", "BoolStorage": "bool",
}


class _Unsupported(Exception):
    """A file this reader does not understand (torch.load is used instead)."""


@dataclass
class _LazyArray:
    """An array whose shape is known and whose values are read on request."""

    shape: tuple[int, ...]
    dtype: str
    _read: Any

    def values(self) -> Any:
        return self._read()


def _npz_arrays(path: Path) -> dict[str, _LazyArray]:
    """The arrays of an ``.npz`` file: shapes from the headers, values read on request."""
    arrays = {}
    with zipfile.ZipFile(path) as archive:
        for member in archive.namelist():
            if not member.endswith(".npy"):
                continue
            with archive.open(member) as f:
                version = np.lib.format.read_magic(f)
                read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                        else np.lib.format.read_array_header_2_0)
                shape, _, dtype = read(f)
            key = member[: -len(".npy")]
            arrays[key] = _LazyArray(tuple(shape), str(dtype),
                                     lambda k=key: np.load(path, allow_pickle=False)[k])
    return arrays


def _pt_arrays(path: Path) -> dict[str, _LazyArray]:
    """The tensors of a ``torch.save`` file (zip format) read with ``pickle`` alone: shapes
    from the pickle, a tensor's values from its storage record on request."""
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        pkl = next((n for n in names if n.endswith("/data.pkl") or n == "data.pkl"), None)
        if pkl is None:
            raise _Unsupported("no data.pkl")
        prefix = pkl[: -len("data.pkl")]
        order = prefix + "byteorder"
        if order in names and archive.read(order).decode().strip() != "little":
            raise _Unsupported("big-endian file")
        raw = archive.read(pkl)

    def storage_reader(key: str, dtype: str) -> Any:
        def read() -> Any:
            with zipfile.ZipFile(path) as archive:
                return np.frombuffer(archive.read(f"{prefix}data/{key}"), dtype=dtype)
        return read

    class Unpickler(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> Any:
            if module == "torch._utils" and name == "_rebuild_tensor_v2":
                return _rebuild_tensor
            if module == "torch" and name in _STORAGE_DTYPES:
                return _STORAGE_DTYPES[name]
            if module == "collections" and name == "OrderedDict":
                return OrderedDict
            raise _Unsupported(f"{module}.{name}")

        def persistent_load(self, pid: Any) -> Any:
            if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
                raise _Unsupported(f"persistent id {pid!r}")
            _, dtype, key, _location, _numel = pid
            return (storage_reader(key, dtype), dtype)

    import io

    obj = Unpickler(io.BytesIO(raw)).load()
    if not isinstance(obj, dict) or not all(isinstance(v, _LazyArray) for v in obj.values()):
        raise _Unsupported("not a dict of tensors")
    return dict(obj)


def _rebuild_tensor(storage: Any, offset: int, size: Any, stride: Any, *_: Any) -> _LazyArray:
    read, dtype = storage
    shape, strides = tuple(size), tuple(stride)

    def values() -> Any:
        flat = read()
        itemsize = flat.dtype.itemsize
        return np.lib.stride_tricks.as_strided(
            flat[offset:], shape=shape, strides=tuple(s * itemsize for s in strides)).copy()

    return _LazyArray(shape, dtype, values)


def _torch_arrays(path: Path) -> dict[str, _LazyArray]:
    """Fallback for ``.pt`` files the pickle reader does not understand (imports torch)."""
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise SettingError("path", str(path),
                           f"a file torch.load can read ({type(err).__name__}: "
                           f"{str(err).splitlines()[0][:120]})") from None
    if not isinstance(data, dict):
        raise SettingError("path", str(path), "a .pt file holding a dict of tensors")
    arrays = {}
    for key, value in data.items():
        value = torch.as_tensor(value)
        arrays[str(key)] = _LazyArray(tuple(value.shape), str(value.numpy().dtype)
                                      if value.dtype != torch.bfloat16 else "bfloat16",
                                      lambda v=value: v.numpy())
    return arrays


# -- the tensors file: checked description --------------------------------------------------------
@dataclass(frozen=True)
class TensorsFileInfo:
    """What a tensors file holds (read once per file version)."""

    layout: str  # "split" (train_*/test_*) or "single" (x, y[, task])
    input_shape: tuple[int, ...]
    n_classes: int
    tasks: tuple[int, ...]  # training task labels present (empty: none given)


_FILE_INFO: dict[tuple[str, int, int], tuple[TensorsFileInfo, dict[str, _LazyArray]]] = {}


def _file_arrays(path: Path) -> dict[str, _LazyArray]:
    try:
        if path.suffix == ".npz":
            return _npz_arrays(path)
        try:
            return _pt_arrays(path)
        except (_Unsupported, pickle.UnpicklingError, zipfile.BadZipFile, KeyError, ValueError,
                EOFError):
            return _torch_arrays(path)
    except (zipfile.BadZipFile, OSError, ValueError) as err:
        if isinstance(err, SettingError):
            raise
        raise SettingError("path", str(path),
                           f"a readable {path.suffix} file ({type(err).__name__}: "
                           f"{str(err)[:120]})") from None


def _labels(arrays: dict[str, _LazyArray], key: str, n: int, path: Path) -> Any:
    array = arrays[key]
    if len(array.shape) != 1 or array.shape[0] != n:
        raise SettingError("path", str(path),
                           f"a file whose {key} has one label per sample: shape ({n},), "
                           f"got {array.shape}")
    if not array.dtype.startswith(("int", "uint")):
        raise SettingError("path", str(path),
                           f"a file whose {key} holds integers (it holds {array.dtype})")
    values = np.asarray(array.values()).astype(np.int64)
    if len(values) and values.min() < 0:
        raise SettingError("path", str(path), f"a file whose {key} has no negative values")
    return values


def read_tensors_file(path: Any) -> tuple[TensorsFileInfo, dict[str, _LazyArray]]:
    """Check ``path``'s layout and labels (``SettingError`` naming ``path``); cached per file
    version, so validation and building read the labels once."""
    if path is None or str(path).strip() == "":
        raise SettingError("path", path, "the path of a .npz or .pt file (benchmark.path=FILE)")
    path = Path(str(path)).expanduser()
    if path.suffix not in SUFFIXES:
        raise SettingError("path", str(path), f"a file ending in {', '.join(SUFFIXES)}")
    if not path.is_file():
        raise SettingError("path", str(path), "an existing file")
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _FILE_INFO:
        arrays = _file_arrays(path)
        _FILE_INFO[key] = (_describe(arrays, path), arrays)
    return _FILE_INFO[key]


def _describe(arrays: dict[str, _LazyArray], path: Path) -> TensorsFileInfo:
    keys = set(arrays)
    layouts = {"split": (SPLIT_KEYS, SPLIT_OPTIONAL), "single": (SINGLE_KEYS, SINGLE_OPTIONAL)}
    layout = next((name for name, (need, optional) in layouts.items()
                   if set(need) <= keys <= set(need) | set(optional)), None)
    if layout is None:
        raise SettingError("path", str(path),
                           "a file with the keys train_x, train_y, test_x, test_y (optionally "
                           "train_task, test_task) or x, y (optionally task); it has "
                           f"{', '.join(sorted(keys)) or 'none'}")
    parts = ("train", "test") if layout == "split" else ("",)
    labels, tasks = {}, {}
    shapes = set()
    for part in parts:
        prefix = f"{part}_" if part else ""
        x = arrays[f"{prefix}x"]
        if len(x.shape) < 2:
            raise SettingError("path", str(path), f"a file whose {prefix}x has one row per "
                               f"sample and at least one feature, got shape {x.shape}")
        shapes.add(x.shape[1:])
        labels[part] = _labels(arrays, f"{prefix}y", x.shape[0], path)
        task_key = f"{prefix}task"
        if task_key in arrays:
            tasks[part] = _labels(arrays, task_key, x.shape[0], path)
    if len(shapes) > 1:
        raise SettingError("path", str(path),
                           f"train_x and test_x with the same sample shape, got {sorted(shapes)}")
    if layout == "split" and len(tasks) == 1:
        raise SettingError("path", str(path), "both train_task and test_task, or neither")
    train = labels[parts[0]]
    if len(train) == 0:
        raise SettingError("path", str(path), "a file with training samples")
    n_classes = int(train.max()) + 1
    missing = sorted(set(range(n_classes)) - set(train.tolist()))
    if missing:
        raise SettingError("path", str(path),
                           f"class ids 0..{n_classes - 1} all present in the training labels "
                           f"(missing: {missing[:10]})")
    if layout == "split" and len(labels["test"]) and labels["test"].max() >= n_classes:
        raise SettingError("path", str(path),
                           f"test labels among the training classes 0..{n_classes - 1}")
    task_ids: tuple[int, ...] = ()
    if tasks:
        task_ids = tuple(sorted(set(tasks[parts[0]].tolist())))
        if layout == "split" and not set(tasks["test"].tolist()) <= set(task_ids):
            raise SettingError("path", str(path), "test task labels among the training ones")
    return TensorsFileInfo(layout, tuple(next(iter(shapes))), n_classes, task_ids)


def _tensors_check(path: Any = None, n_experiences: Any = None, *, return_task_id: Any = False,
                   seed: Any = 0, fixed_class_order: Any = None, shuffle: Any = True,
                   test_size: Any = 0.25, normalize: Any = True, **_: Any) -> None:
    BOOL("return_task_id", return_task_id)
    BOOL("shuffle", shuffle)
    BOOL("normalize", normalize)
    TEST_SIZE("test_size", test_size)
    info, _ = read_tensors_file(path)
    if info.tasks:
        if n_experiences is not None and n_experiences != len(info.tasks):
            raise SettingError("n_experiences", n_experiences,
                               f"null or {len(info.tasks)}: the file's task labels "
                               f"{list(info.tasks)} make the experiences")
        if fixed_class_order is not None:
            raise SettingError("fixed_class_order", fixed_class_order,
                               "null: the file's task labels make the experiences")
        check_class_split(info.n_classes, 1, None, seed)
        return
    if n_experiences is None:
        divisors = [d for d in range(1, info.n_classes + 1) if info.n_classes % d == 0]
        raise SettingError("n_experiences", None,
                           f"a divisor of the {info.n_classes} classes: {divisors}")
    check_class_split(info.n_classes, n_experiences, fixed_class_order, seed)


def _tensors_info(path: Any = None, n_experiences: Any = None, *, return_task_id: bool = False,
                  fixed_class_order: Any = None, **_: Any) -> StreamInfo:
    info, _ = read_tensors_file(path)
    if info.tasks:
        n = len(info.tasks)
        return StreamInfo(info.n_classes, n, n if return_task_id else 1, info.input_shape)
    return class_split_info(info.n_classes, info.input_shape, n_experiences, return_task_id,
                            fixed_class_order)


class Standardize:
    """``(x - mean) / std`` on float batches; per channel (dim 1) for images, else one
    scalar pair. Integer inputs (uint8 pixels) are converted to float first."""

    def __init__(self, mean: Sequence[float], std: Sequence[float], image: bool) -> None:
        self.mean, self.std, self.image = tuple(mean), tuple(std), image

    def __call__(self, x: Tensor) -> Tensor:
        x = x.to(torch.float32)
        dims = x.dim() if self.image else 1
        mean = _constant(self.mean, x.device, dims)
        std = _constant(self.std, x.device, dims)
        return (x - mean) / std

    @classmethod
    def of(cls, x: Tensor) -> Standardize:
        """The statistics of ``x`` (per channel for 3-D samples: images)."""
        image = x.dim() == 4
        values = x.to(torch.float64)
        if image:
            per_channel = values.transpose(0, 1).reshape(x.shape[1], -1)
            mean, std = per_channel.mean(1), per_channel.std(1)
        else:
            mean, std = values.mean().view(1), values.std().view(1)
        std = torch.where(std > 0, std, torch.ones_like(std))
        return cls(mean.tolist(), std.tolist(), image)

    def __repr__(self) -> str:
        return f"Standardize(mean={self.mean}, std={self.std})"


@lru_cache(maxsize=64)
def _constant(values: tuple[float, ...], device: Any, dims: int) -> Tensor:
    """Per-channel values shaped to broadcast over ``dims``-dimensional batches."""
    shape = (1, -1, *([1] * (dims - 2))) if dims > 1 else (-1,)
    return torch.tensor(values, dtype=torch.float32, device=device).view(shape)


def _file_digest(*parts: Any) -> str:
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:16]


@declared(info=_tensors_info, check_args=_tensors_check)
def tensors_file_benchmark(
    path: str | Path,
    n_experiences: int | None = None,
    *,
    return_task_id: bool = False,
    seed: int | None = 0,
    fixed_class_order: Sequence[int] | None = None,
    shuffle: bool = True,
    test_size: float = 0.25,
    normalize: bool = True,
) -> Benchmark:
    """Your own tensors (see the module docstring for the file's keys). ``test_size``: the
    stratified test part when the file has one ``x, y`` set (its own fixed seed, so ``seed``
    changes the class order, not the test set); ``normalize``: standardise with the training
    part's statistics."""
    from cl_runner.benchmarks.digits import stratified_split
    from cl_runner.data.dataset import ClassificationDataset

    _tensors_check(path, n_experiences, return_task_id=return_task_id, seed=seed,
                   fixed_class_order=fixed_class_order, shuffle=shuffle, test_size=test_size,
                   normalize=normalize)
    info, arrays = read_tensors_file(path)
    values = {k: torch.as_tensor(np.ascontiguousarray(a.values())) for k, a in arrays.items()}
    if info.layout == "split":
        parts = {s: (values[f"{s}_x"], values[f"{s}_y"].long(), values.get(f"{s}_task"))
                 for s in ("train", "test")}
    else:
        train_idx, test_idx = stratified_split(values["y"].long(), test_size)
        task = values.get("task")
        parts = {s: (values["x"][idx], values["y"].long()[idx],
                     None if task is None else task.long()[idx])
                 for s, idx in (("train", train_idx), ("test", test_idx))}
    transform = Standardize.of(parts["train"][0]) if normalize else None
    if transform is None and not parts["train"][0].is_floating_point():
        from cl_runner.benchmarks.user_transforms import ToUnitFloat

        transform = ToUnitFloat()
    resolved = Path(str(path)).expanduser().resolve()
    stat = resolved.stat()
    name = f"tensors_file/{_file_digest(resolved, stat.st_size, stat.st_mtime_ns, test_size)}"
    if info.tasks:
        return _task_streams(parts, info, return_task_id, transform, name)
    return nc_benchmark(
        ClassificationDataset(*parts["train"][:2], transform=transform),
        ClassificationDataset(*parts["test"][:2], transform=transform),
        n_experiences, return_task_id, n_classes=info.n_classes, seed=seed, shuffle=shuffle,
        fixed_class_order=fixed_class_order, name=name,
    )


def _task_streams(parts: dict[str, Any], info: TensorsFileInfo, return_task_id: bool,
                  transform: Any, name: str) -> Benchmark:
    """One experience per task label of the file, ascending."""
    from cl_runner.data.dataset import ClassificationDataset

    streams = []
    for stream, (x, y, task) in parts.items():
        labels = task if return_task_id else torch.zeros_like(task)
        data = ClassificationDataset(x, y, labels, transform=transform,
                                     name=f"{name}/{stream}/tasks={return_task_id}")
        if stream != "train":
            data = data.eval()
        exps = []
        for i, t in enumerate(info.tasks):
            part = data.subset(torch.nonzero(task == t).flatten())
            exps.append(Experience(part, i, sorted(part.targets.unique().tolist()),
                                   t if return_task_id else 0, stream))
        streams.append(Stream(stream, exps))
    return Benchmark(*streams, n_classes=info.n_classes, classes_order=range(info.n_classes),
                     return_task_id=return_task_id, name="tensors_file")


# -- the image folder -----------------------------------------------------------------------------
@dataclass(frozen=True)
class FolderInfo:
    classes: tuple[str, ...]
    train: tuple[tuple[Path, int], ...]  # (file, class id)
    test: tuple[tuple[Path, int], ...]  # empty: split off test_size


def _class_files(folder: Path) -> dict[str, list[Path]]:
    """``ImageFolder``'s classes (sorted sub-folder names) and their image files."""
    classes = sorted(d.name for d in folder.iterdir() if d.is_dir())
    return {c: sorted(p for p in (folder / c).rglob("*")
                      if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            for c in classes}


def read_image_folder(root: Any) -> FolderInfo:
    """Check ``root``'s layout (``SettingError`` naming ``root``) and list its images."""
    if root is None or str(root).strip() == "":
        raise SettingError("root", root, "a folder of class folders of images "
                           "(benchmark.root=DIR)")
    root = Path(str(root)).expanduser()
    if not root.is_dir():
        raise SettingError("root", str(root), "an existing folder")
    split = (root / "train").is_dir() and (root / "test").is_dir()
    train = _class_files(root / "train" if split else root)
    if not train:
        raise SettingError("root", str(root),
                           "a folder holding one folder of images per class (ImageFolder's "
                           "layout), or train/ and test/ folders laid out so")
    empty = [c for c, files in train.items() if not files]
    if empty:
        raise SettingError("root", str(root),
                           f"class folders holding images ({', '.join(IMAGE_SUFFIXES)}); "
                           f"empty: {empty[:5]}")
    classes = tuple(train)
    ids = {c: i for i, c in enumerate(classes)}
    test: list[tuple[Path, int]] = []
    if split:
        test_classes = _class_files(root / "test")
        unknown = sorted(set(test_classes) - set(classes))
        if unknown:
            raise SettingError("root", str(root),
                               f"test classes among the training ones (unknown: {unknown[:5]})")
        test = [(f, ids[c]) for c, files in test_classes.items() for f in files]
    return FolderInfo(classes, tuple((f, ids[c]) for c, files in train.items() for f in files),
                      tuple(test))


def _folder_check(root: Any = None, n_experiences: Any = None, *, return_task_id: Any = False,
                  seed: Any = 0, fixed_class_order: Any = None, shuffle: Any = True,
                  size: Any = 32, channels: Any = 3, test_size: Any = 0.25, **_: Any) -> None:
    BOOL("return_task_id", return_task_id)
    BOOL("shuffle", shuffle)
    POSITIVE_INT("size", size)
    CHANNELS("channels", channels)
    TEST_SIZE("test_size", test_size)
    info = read_image_folder(root)
    n = len(info.classes)
    if n_experiences is None:
        raise SettingError("n_experiences", None,
                           f"a divisor of the {n} classes: "
                           f"{[d for d in range(1, n + 1) if n % d == 0]}")
    check_class_split(n, n_experiences, fixed_class_order, seed)


def _folder_info(root: Any = None, n_experiences: Any = None, *, return_task_id: bool = False,
                 fixed_class_order: Any = None, size: int = 32, channels: int = 3,
                 **_: Any) -> StreamInfo:
    info = read_image_folder(root)
    return class_split_info(len(info.classes), (channels, size, size), n_experiences,
                            return_task_id, fixed_class_order)


def _decode(files: Sequence[Path], size: int, channels: int) -> Tensor:
    from PIL import Image

    mode = "RGB" if channels == 3 else "L"
    out = np.empty((len(files), size, size, channels), dtype=np.uint8)
    for i, file in enumerate(files):
        try:
            with Image.open(file) as image:
                resized = image.convert(mode).resize((size, size),
                                                     Image.Resampling.BILINEAR)
                out[i] = np.asarray(resized, dtype=np.uint8).reshape(size, size, channels)
        except OSError as err:
            raise SettingError("root", str(file.parent.parent),
                               f"readable images ({file}: {err})") from None
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()


def load_image_folder(info: FolderInfo, size: int, channels: int, cache_root: Any,
                      root: Path) -> dict[str, Tensor]:
    """Decoded uint8 ``(N, C, size, size)`` images and labels, from the tensor cache when the
    files did not change."""
    from cl_runner.benchmarks import tensor_cache
    from cl_runner.benchmarks.torchvision_sources import default_data_root

    files = [f for f, _ in info.train] + [f for f, _ in info.test]
    key = tensor_cache.source_key(files, salt=f"image_folder|{size}|{channels}|{info.classes}")
    cache_dir = Path(cache_root).expanduser() if cache_root else default_data_root()
    cache_file = (cache_dir / tensor_cache.CACHE_DIR
                  / f"image_folder-{_file_digest(root.resolve(), size, channels)}.pt")
    cached = tensor_cache.load_tensors(cache_file, key)
    if cached is not None:
        return cached
    tensors = {
        "train_x": _decode([f for f, _ in info.train], size, channels),
        "train_y": torch.tensor([c for _, c in info.train], dtype=torch.long),
        "test_x": _decode([f for f, _ in info.test], size, channels),
        "test_y": torch.tensor([c for _, c in info.test], dtype=torch.long),
    }
    tensor_cache.save_tensors(cache_file, key, tensors)
    return tensors


@declared(info=_folder_info, check_args=_folder_check)
def image_folder_benchmark(
    root: str | Path,
    n_experiences: int | None = None,
    *,
    return_task_id: bool = False,
    seed: int | None = 0,
    fixed_class_order: Sequence[int] | None = None,
    shuffle: bool = True,
    size: int = 32,
    channels: int = 3,
    test_size: float = 0.25,
    cache_root: str | Path | None = None,
) -> Benchmark:
    """Your own images in ``ImageFolder``'s layout (see the module docstring), class-split
    like the built-in benchmarks. ``cache_root``: where ``cl_runner_cache/`` holds the decoded
    tensors (default ``$CL_RUNNER_DATA_ROOT`` or ``./data``)."""
    from cl_runner.benchmarks.batch_transforms import NormalizePixels
    from cl_runner.benchmarks.digits import stratified_split
    from cl_runner.data.dataset import ClassificationDataset

    _folder_check(root, n_experiences, return_task_id=return_task_id, seed=seed,
                  fixed_class_order=fixed_class_order, shuffle=shuffle, size=size,
                  channels=channels, test_size=test_size)
    info = read_image_folder(root)
    data = load_image_folder(info, size, channels, cache_root, Path(str(root)).expanduser())
    train_x, train_y, test_x, test_y = (data[k] for k in ("train_x", "train_y", "test_x",
                                                          "test_y"))
    if not info.test:
        train_idx, test_idx = stratified_split(train_y, test_size)
        train_x, train_y, test_x, test_y = (train_x[train_idx], train_y[train_idx],
                                            train_x[test_idx], train_y[test_idx])
    stats = Standardize.of(train_x.to(torch.float32) / 255.0)
    normalise = NormalizePixels(stats.mean, stats.std)
    folder = Path(str(root)).expanduser().resolve()
    name = f"image_folder/{_file_digest(folder, size, channels, test_size)}"
    return nc_benchmark(
        ClassificationDataset(train_x, train_y, transform=normalise),
        ClassificationDataset(test_x, test_y, transform=normalise),
        n_experiences, return_task_id, n_classes=len(info.classes), seed=seed, shuffle=shuffle,
        fixed_class_order=fixed_class_order, name=name,
    )
