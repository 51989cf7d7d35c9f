"""Vision datasets read through torchvision: find or fetch the files, verify them, decode once.

Where the files come from, in order: files already under ``root`` in torchvision's layout
(``root/MNIST/raw/...``, ``root/cifar-10-batches-py/...``); else a local ``mirror`` folder with
the original release files, put into that layout; else torchvision's download
(``download=True``). Files are verified before torchvision parses them, and every problem is one
DatasetUnavailableError line naming the path and how to obtain the data, never a parser
traceback. The decoded uint8 tensors are cached under ``root/cl_runner_cache`` (tensor_cache).

``verify_checksums=True`` accepts only the official releases: CIFAR files must have
torchvision's md5s; IDX files must hold the official item counts and, where known, the md5 of
the decompressed official file (Fashion-MNIST; Debian recompresses the ``.gz``, so the archive's
md5 differs while its content does not). Pass False for custom or test files in the same format.
CIFAR files are Python pickles: with the check off, unpickle only files you trust.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib
import os
import shutil
import tarfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import lazy_loader as lazy

from cl_runner.benchmarks import tensor_cache
from cl_runner.benchmarks.idx_files import IdxFormatError, idx_item_count, idx_kind
from cl_runner.files import atomic_write

if TYPE_CHECKING:
    from torch import Tensor

torch = lazy.load("torch")

# md5 of the decompressed official files: verified here against Debian's dataset-fashion-mnist
# and matching the values published with other loaders of the original release.
FMNIST_RAW_MD5 = {
    "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
    "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
    "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
    "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
}
# torchvision's file names (its ``resources`` / ``train_list``...), spelled out so that a cache
# hit needs no torchvision import; tests check them against torchvision's lists
IDX_FILES = (
    "train-images-idx3-ubyte", "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte",
)
_OFFICIAL_IDX_COUNT = {"train": 60000, "t10k": 10000}
_HOW_TO_OBTAIN = (
    "set benchmark.download=true to fetch it with torchvision, "
    "or benchmark.mirror to a folder holding the original files"
)
_CUSTOM_FILES = "pass verify_checksums=False for custom files"


class DatasetUnavailableError(ValueError):
    """A dataset's files are missing or corrupt (one line: path, problem, how to get them)."""


@dataclass
class SplitTensors:
    """A dataset decoded once: uint8 images ``(N, C, H, W)`` and int64 targets per split."""

    train_x: Tensor
    train_y: Tensor
    test_x: Tensor
    test_y: Tensor


@dataclass(frozen=True)
class _Source:
    title: str
    tv_name: str  # class in torchvision.datasets, imported on first use (it costs ~2 s)
    hint: str = field(default="", kw_only=True)

    @property
    def tv_class(self) -> Any:
        return getattr(importlib.import_module("torchvision.datasets"), self.tv_name)

    def unavailable(self, problem: str) -> DatasetUnavailableError:
        return DatasetUnavailableError(f"{self.title}: {problem}; {_HOW_TO_OBTAIN}{self.hint}")


@dataclass(frozen=True)
class IdxSource(_Source):
    """MNIST-format data: four IDX files, read decompressed by torchvision from ``raw/``."""

    raw_md5: dict[str, str] = field(default_factory=dict)

    def folder(self, root: Path) -> Path:
        return root / self.tv_name / "raw"

    def files(self, root: Path) -> list[Path]:
        return [self.folder(root) / name for name in IDX_FILES]

    def install(self, mirror: Path, root: Path, verify_checksums: bool) -> None:
        """Decompress (or copy) the mirror's files into ``root``, checking each one first."""
        for dest in self.files(root):
            if dest.is_file():
                continue
            gz = mirror / f"{dest.name}.gz"
            src = gz if gz.is_file() else mirror / dest.name
            if not src.is_file():
                raise self.unavailable(f"{gz} is missing")
            data = src.read_bytes()
            if src.suffix == ".gz":
                try:
                    data = gzip.decompress(data)
                except (OSError, EOFError, zlib.error) as err:
                    raise self.unavailable(f"{src} is not a valid gzip file ({err})") from None
            self._check(dest.name, src, data, verify_checksums)
            atomic_write(dest, data)

    def verify(self, root: Path, verify_checksums: bool) -> None:
        counts = {
            path.name: self._check(path.name, path, path.read_bytes(), verify_checksums)
            for path in self.files(root)
        }
        for prefix in _OFFICIAL_IDX_COUNT:
            images, labels = f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"
            if counts[images] != counts[labels]:
                raise self.unavailable(
                    f"{self.folder(root) / images} holds {counts[images]} images but "
                    f"{labels} holds {counts[labels]} labels"
                )

    def _check(self, name: str, shown: Path, data: bytes, verify_checksums: bool) -> int:
        try:
            count = idx_item_count(data, idx_kind(name))
        except IdxFormatError as err:
            raise self.unavailable(f"{shown} is not a valid IDX file ({err})") from None
        if not verify_checksums:
            return count
        official = _OFFICIAL_IDX_COUNT[name.split("-")[0]]
        if count != official:
            raise self.unavailable(
                f"{shown} holds {count} items, the official release has {official} "
                f"({_CUSTOM_FILES})"
            )
        expected = self.raw_md5.get(name)
        got = expected and hashlib.md5(data, usedforsecurity=False).hexdigest()
        if got != expected:
            raise self.unavailable(
                f"{shown} differs from the official release (md5 of its content {got}, "
                f"expected {expected}; {_CUSTOM_FILES})"
            )
        return count

    def parse(self, root: Path, train: bool) -> tuple[Tensor, Tensor]:
        data = self.tv_class(str(root), train=train, download=False)
        return data.data.unsqueeze(1).clone(), data.targets

    def download(self, root: Path) -> None:
        self.tv_class(str(root), train=True, download=True)


@dataclass(frozen=True)
class CifarSource(_Source):
    """CIFAR-10/100: pickled batches plus a meta file in ``root/<base_folder>``."""

    base_folder: str
    archive: str
    file_names: tuple[str, ...]  # train batches, test batch, meta: torchvision's order

    def _md5s(self) -> list[str]:
        cls = self.tv_class
        return [md5 for _, md5 in cls.train_list + cls.test_list] + [cls.meta["md5"]]

    def folder(self, root: Path) -> Path:
        return root / self.base_folder

    def files(self, root: Path) -> list[Path]:
        return [self.folder(root) / name for name in self.file_names]

    def install(self, mirror: Path, root: Path, verify_checksums: bool) -> None:
        """Extract the needed files from the mirror's archive, or link its extracted files.

        The files are checked afterwards by ``verify`` (md5 when ``verify_checksums``).
        """
        archive = mirror / self.archive
        if archive.is_file():
            self._extract(archive, root)
            return
        base = self.base_folder
        for dest in self.files(root):
            if dest.is_file():
                continue
            src = next((p for p in (mirror / base / dest.name, mirror / dest.name) if p.is_file()),
                       None)
            if src is None:
                raise self.unavailable(f"{mirror / base / dest.name} is missing (nor {archive})")
            _link(src, dest)

    def _extract(self, archive: Path, root: Path) -> None:
        """One pass over the archive in its own order (a gzip stream cannot seek back cheaply)."""
        wanted = {f"{self.base_folder}/{dest.name}": dest for dest in self.files(root)}
        try:
            with tarfile.open(archive, "r:gz") as tar:
                for member in tar:
                    if member.isfile() and member.name in wanted:
                        data = tar.extractfile(member).read()  # type: ignore[union-attr]
                        atomic_write(wanted.pop(member.name), data)
        except (tarfile.TarError, OSError, EOFError, zlib.error) as err:
            raise self.unavailable(f"{archive} is not a valid archive ({err})") from None
        if wanted:
            raise self.unavailable(f"{archive} lacks {next(iter(wanted))}")

    def verify(self, root: Path, verify_checksums: bool) -> None:
        if not verify_checksums:
            return
        for path, expected in zip(self.files(root), self._md5s(), strict=True):
            got = _file_md5(path)
            if got != expected:
                raise self.unavailable(
                    f"{path.resolve()} does not match the official release "
                    f"(md5 {got}, expected {expected}; {_CUSTOM_FILES})"
                )

    def parse(self, root: Path, train: bool) -> tuple[Tensor, Tensor]:
        # torchvision's md5 checks are done by verify() (or deliberately skipped): parse only
        unchecked = type(self.tv_class.__name__, (self.tv_class,), {
            "train_list": [[n, None] for n, _ in self.tv_class.train_list],
            "test_list": [[n, None] for n, _ in self.tv_class.test_list],
            "meta": {**self.tv_class.meta, "md5": None},
        })
        data = unchecked(str(root), train=train, download=False)
        x = torch.from_numpy(data.data).permute(0, 3, 1, 2).contiguous()  # HWC -> CHW
        return x, torch.as_tensor(data.targets, dtype=torch.long)

    def download(self, root: Path) -> None:
        self.tv_class(str(root), train=True, download=True)


SOURCES: dict[str, IdxSource | CifarSource] = {
    "mnist": IdxSource("MNIST", "MNIST"),
    "fmnist": IdxSource(
        "Fashion-MNIST", "FashionMNIST", raw_md5=FMNIST_RAW_MD5,
        hint="; on Debian/Ubuntu: apt install dataset-fashion-mnist, "
        "then benchmark.mirror=/usr/share/datasets/fashion-mnist",
    ),
    "cifar10": CifarSource(
        "CIFAR-10", "CIFAR10", "cifar-10-batches-py", "cifar-10-python.tar.gz",
        (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta"),
        hint=" (cifar-10-python.tar.gz or its extracted files)",
    ),
    "cifar100": CifarSource(
        "CIFAR-100", "CIFAR100", "cifar-100-python", "cifar-100-python.tar.gz",
        ("train", "test", "meta"),
        hint=" (cifar-100-python.tar.gz or its extracted files)",
    ),
}


def default_data_root() -> Path:
    """``$CL_RUNNER_DATA_ROOT``, else ``./data`` (the runner's ``paths.data_root`` default)."""
    return Path(os.environ.get("CL_RUNNER_DATA_ROOT", "data"))


def load_vision_tensors(
    name: str,
    root: str | Path | None = None,
    *,
    download: bool = False,
    mirror: str | Path | None = None,
    verify_checksums: bool = True,
) -> SplitTensors:
    """Train and test tensors of dataset ``name`` (a key of SOURCES), from cache when valid."""
    source = SOURCES[name]
    root = default_data_root() if root is None else Path(root).expanduser()
    files = source.files(root)
    if not all(path.is_file() for path in files):
        _fetch(source, root, files, download=download, mirror=mirror,
               verify_checksums=verify_checksums)
    key = tensor_cache.source_key(files, salt=f"{name}|verify_checksums={verify_checksums}")
    cache_file = root / tensor_cache.CACHE_DIR / f"{name}.pt"
    cached = tensor_cache.load_tensors(cache_file, key)
    if cached is not None:
        return SplitTensors(**cached)
    source.verify(root, verify_checksums)
    tensors = _decode(source, root)
    tensor_cache.save_tensors(cache_file, key, vars(tensors))
    return tensors


def _fetch(
    source: IdxSource | CifarSource,
    root: Path,
    files: list[Path],
    *,
    download: bool,
    mirror: str | Path | None,
    verify_checksums: bool,
) -> None:
    """Put the missing files under ``root``: from the mirror folder, else by downloading."""
    mirror_dir = Path(mirror).expanduser() if mirror else None
    if mirror_dir is not None and mirror_dir.is_dir():
        source.install(mirror_dir, root, verify_checksums)
        return
    if download:
        try:
            source.download(root)
        except Exception as err:  # network, disk or archive failure alike: one line, not a trace
            raise source.unavailable(f"download into {root} failed ({_one_line(err)})") from err
        return
    missing = next(path for path in files if not path.is_file())
    problem = (
        f"data root {root} (benchmark.root) does not exist" if not root.exists()
        else f"{missing} is missing"
    )
    if mirror_dir is not None:
        problem += f", and mirror {mirror_dir} is not a folder"
    raise source.unavailable(problem)


def _decode(source: IdxSource | CifarSource, root: Path) -> SplitTensors:
    """Parse both splits with torchvision's dataset classes."""
    try:
        train_x, train_y = source.parse(root, train=True)
        test_x, test_y = source.parse(root, train=False)
    except Exception as err:  # a file that passed the checks but not the parser: still one line
        raise source.unavailable(
            f"files in {source.folder(root)} could not be parsed "
            f"({type(err).__name__}: {_one_line(err)})"
        ) from err
    return SplitTensors(train_x, train_y, test_x, test_y)


def _file_md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


def _link(src: Path, dest: Path) -> None:
    """Symlink ``dest`` to ``src`` (a copy where links are not allowed), atomically."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    try:
        tmp.symlink_to(src.resolve())
    except OSError:
        shutil.copyfile(src, tmp)
    os.replace(tmp, dest)
