"""Vision benchmarks through torchvision's real parsers, on tiny but valid files.

The fixtures write the original formats (gzipped IDX for MNIST/Fashion-MNIST, pickled batches
for CIFAR) into ``tmp_path``; only the file sizes differ from the releases, so these tests pass
``verify_checksums=False`` except where the official-release checks are under test.
"""

from __future__ import annotations

import gzip
import inspect
import io
import os
import pickle
import struct
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import get_object, instantiate
from omegaconf import OmegaConf

from cl_runner.benchmarks import (
    DatasetUnavailableError,
    PermutedMNIST,
    SplitCIFAR10,
    SplitCIFAR100,
    SplitFMNIST,
    SplitMNIST,
)
from cl_runner.benchmarks import torchvision_sources as sources
from cl_runner.benchmarks.base import class_order
from cl_runner.benchmarks.vision import CIFAR10_STATS, FMNIST_STATS, MNIST_STATS
from cl_runner.checks import SettingError

CONF = Path(__file__).resolve().parents[1] / "cl_runner" / "conf"
DEBIAN_FMNIST = Path("/usr/share/datasets/fashion-mnist")
IDX_NAMES = {
    ("train", "images"): "train-images-idx3-ubyte",
    ("train", "labels"): "train-labels-idx1-ubyte",
    ("test", "images"): "t10k-images-idx3-ubyte",
    ("test", "labels"): "t10k-labels-idx1-ubyte",
}


# -- writers of the original formats ------------------------------------------------------------
def idx_bytes(array: np.ndarray) -> bytes:
    """An IDX file of unsigned bytes: magic 0x0000 08 <ndim>, big-endian sizes, then the data."""
    return struct.pack(f">I{array.ndim}I", 0x800 + array.ndim, *array.shape) + array.tobytes()


def fake_idx_release(n_train: int = 20, n_test: int = 10, seed: int = 0) -> dict:
    """Images and labels per split (labels cycle through 0..9, so every class occurs)."""
    rng = np.random.default_rng(seed)
    return {
        split: (
            rng.integers(0, 256, (n, 28, 28), dtype=np.uint8),
            np.arange(n, dtype=np.uint8) % 10,
        )
        for split, n in (("train", n_train), ("test", n_test))
    }


def write_idx(folder: Path, release: dict, gz: bool) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for split, (images, labels) in release.items():
        for kind, array in (("images", images), ("labels", labels)):
            data = idx_bytes(array)
            name = IDX_NAMES[split, kind]
            if gz:
                (folder / f"{name}.gz").write_bytes(gzip.compress(data))
            else:
                (folder / name).write_bytes(data)


def cifar_files(n_classes: int, seed: int = 0) -> dict[str, dict]:
    """CIFAR-10 (5 train batches of 4) or CIFAR-100 (one train file of 200) as pickled dicts.

    Real CIFAR pickles come from Python 2, whose str keys torchvision reads back as str
    (encoding='latin1'); Python 3 pickles must therefore use str keys, not b'data'.
    """
    rng = np.random.default_rng(seed)

    def batch(n: int, label_key: str) -> dict:
        return {
            "data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            label_key: [i % n_classes for i in range(n)],
        }

    if n_classes == 10:
        files = {f"data_batch_{i}": batch(4, "labels") for i in range(1, 6)}
        files["test_batch"] = batch(10, "labels")
        files["batches.meta"] = {"label_names": [f"class{i}" for i in range(10)]}
    else:
        files = {"train": batch(200, "fine_labels"), "test": batch(100, "fine_labels")}
        files["meta"] = {"fine_label_names": [f"class{i}" for i in range(100)]}
    return files


def write_pickles(folder: Path, files: dict[str, dict]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (folder / name).write_bytes(pickle.dumps(content, protocol=2))


def cifar_train_data(files: dict[str, dict]) -> np.ndarray:
    names = [n for n in files if n.startswith("data_batch") or n == "train"]
    return np.concatenate([files[n]["data"] for n in names]).reshape(-1, 3, 32, 32)


def normalised(raw: np.ndarray | torch.Tensor, stats) -> torch.Tensor:
    x = torch.as_tensor(np.asarray(raw), dtype=torch.float32) / 255
    mean, std = (torch.tensor(v).view(-1, 1, 1) for v in stats)
    return (x - mean) / std


def error_line(excinfo: pytest.ExceptionInfo) -> str:
    message = str(excinfo.value)
    assert "\n" not in message
    return message


# -- fixtures -------------------------------------------------------------------------------------
@pytest.fixture
def mnist_root(tmp_path: Path) -> tuple[Path, dict]:
    """MNIST already in torchvision's layout: root/MNIST/raw/<decompressed IDX files>."""
    release = fake_idx_release()
    write_idx(tmp_path / "data" / "MNIST" / "raw", release, gz=False)
    return tmp_path / "data", release


@pytest.fixture
def fmnist_mirror(tmp_path: Path) -> tuple[Path, dict]:
    """A Debian-style mirror: the four .gz files in one folder."""
    release = fake_idx_release(seed=1)
    write_idx(tmp_path / "mirror", release, gz=True)
    return tmp_path / "mirror", release


@pytest.fixture
def cifar10_root(tmp_path: Path) -> tuple[Path, dict]:
    files = cifar_files(10)
    write_pickles(tmp_path / "data" / "cifar-10-batches-py", files)
    return tmp_path / "data", files


@pytest.fixture
def decode_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records every real decode (torchvision parse) of a dataset."""
    calls: list[str] = []
    decode = sources._decode

    def counting(source, root):
        calls.append(source.title)
        return decode(source, root)

    monkeypatch.setattr(sources, "_decode", counting)
    return calls


# -- MNIST family: loading, class splits, task labels -------------------------------------------
def test_split_mnist_reads_torchvision_layout_and_normalises(mnist_root):
    root, release = mnist_root
    bench = SplitMNIST(5, seed=3, root=root, verify_checksums=False)
    assert bench.classes_order == class_order(10, 3, None)
    assert bench.input_shape == (1, 28, 28)
    assert [len(e.dataset) for e in bench.train_stream] == [4] * 5
    assert sum(len(e.dataset) for e in bench.test_stream) == 10
    images, labels = release["train"]
    for exp in bench.train_stream:
        assert set(exp.dataset.targets.tolist()) == set(exp.classes_in_this_experience)
        x, y, t = exp.dataset.gather(torch.arange(len(exp.dataset)))
        rows = exp.dataset.storage_indices
        assert x.dtype == torch.float32
        torch.testing.assert_close(x, normalised(images[rows.numpy()][:, None], MNIST_STATS))
        assert y.tolist() == labels[rows.numpy()].tolist()
        assert t.unique().tolist() == [0]


def test_return_task_id_gives_experience_i_task_label_i(mnist_root):
    root, _ = mnist_root
    bench = SplitMNIST(5, return_task_id=True, seed=0, root=root, verify_checksums=False)
    for stream in (bench.train_stream, bench.test_stream):
        for i, exp in enumerate(stream):
            assert exp.task_label == i
            assert exp.dataset.targets_task_labels.unique().tolist() == [i]


def test_fixed_class_order_defines_the_experiences(mnist_root):
    root, _ = mnist_root
    order = [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]
    bench = SplitMNIST(2, fixed_class_order=order, root=root, verify_checksums=False)
    assert bench.classes_order == order
    assert bench.classes_in_experience == [[5, 6, 7, 8, 9], [0, 1, 2, 3, 4]]


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"n_experiences": 3},
         "n_experiences=3 is not allowed: a divisor of the 10 classes: [1, 2, 5, 10]"),
        ({"n_experiences": 0}, "n_experiences=0 is not allowed: a positive integer"),
        (
            {"n_experiences": 2, "fixed_class_order": [0, 1, 2, 3, 4, 5, 6, 7, 8, 10]},
            "fixed_class_order=[0, 1, 2, 3, 4, 5, 6, 7, 8, 10] is not allowed: class ids 0..9 "
            "(unknown: [10])",
        ),
        (
            {"n_experiences": 2, "fixed_class_order": [0, 1, 1, 3, 4, 5, 6, 7, 8, 9]},
            "fixed_class_order=[0, 1, 1, 3, 4, 5, 6, 7, 8, 9] is not allowed: each class at "
            "most once",
        ),
    ],
)
def test_split_settings_are_checked_before_any_data_is_read(tmp_path, kwargs, expected):
    with pytest.raises(SettingError) as excinfo:
        SplitFMNIST(root=tmp_path / "absent", **kwargs)
    assert error_line(excinfo).startswith(expected)


def test_fmnist_mirror_is_decompressed_into_a_new_root(fmnist_mirror, tmp_path):
    mirror, release = fmnist_mirror
    root = tmp_path / "new" / "root"
    bench = SplitFMNIST(2, seed=0, root=root, mirror=mirror, verify_checksums=False)
    raw = root / "FashionMNIST" / "raw"
    assert sorted(p.name for p in raw.iterdir()) == sorted(IDX_NAMES.values())
    assert (raw / "train-images-idx3-ubyte").read_bytes() == idx_bytes(release["train"][0])
    assert sum(len(e.dataset) for e in bench.train_stream) == 20
    exp = bench.test_stream[0]
    rows = exp.dataset.storage_indices.numpy()
    torch.testing.assert_close(
        exp.dataset.gather(torch.arange(len(rows)))[0],
        normalised(release["test"][0][rows][:, None], FMNIST_STATS),
    )


# -- missing and corrupt files: one line naming the path and how to get the data ------------------
def test_missing_mirror_file(fmnist_mirror, tmp_path):
    mirror, _ = fmnist_mirror
    (mirror / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DatasetUnavailableError) as excinfo:
        SplitFMNIST(root=tmp_path / "root", mirror=mirror, verify_checksums=False)
    message = error_line(excinfo)
    assert message.startswith(f"Fashion-MNIST: {mirror / 't10k-labels-idx1-ubyte.gz'} is missing;")
    assert "benchmark.download=true" in message
    assert "apt install dataset-fashion-mnist" in message


def test_truncated_gzip_in_mirror(fmnist_mirror, tmp_path):
    mirror, _ = fmnist_mirror
    gz = mirror / "train-images-idx3-ubyte.gz"
    gz.write_bytes(gz.read_bytes()[:-100])
    with pytest.raises(DatasetUnavailableError) as excinfo:
        SplitFMNIST(root=tmp_path / "root", mirror=mirror, verify_checksums=False)
    assert error_line(excinfo).startswith(f"Fashion-MNIST: {gz} is not a valid gzip file (")


@pytest.mark.parametrize(
    ("name", "corrupt", "problem"),
    [
        ("train-images-idx3-ubyte", lambda b: b"\x00\x00\x08\x01" + b[4:],
         "IDX magic number 0x00000801, expected 0x00000803 for images"),
        ("train-images-idx3-ubyte", lambda b: b[:-5],
         "15691 bytes, but its header declares 15696"),
        ("t10k-labels-idx1-ubyte", lambda b: b[:-1] + b"\x0c", "label 12 is outside 0..9"),
        ("t10k-images-idx3-ubyte", lambda b: b[:8] + struct.pack(">II", 28, 27) + b[16:],
         "images are 28x27, expected 28x28"),
    ],
)
def test_corrupt_idx_file_under_root(mnist_root, name, corrupt, problem):
    root, _ = mnist_root
    path = root / "MNIST" / "raw" / name
    path.write_bytes(corrupt(path.read_bytes()))
    with pytest.raises(DatasetUnavailableError) as excinfo:
        SplitMNIST(root=root, verify_checksums=False)
    assert error_line(excinfo).startswith(f"MNIST: {path} is not a valid IDX file ({problem});")


def test_images_without_matching_labels(mnist_root):
    root, release = mnist_root
    labels = root / "MNIST" / "raw" / "train-labels-idx1-ubyte"
    labels.write_bytes(idx_bytes(release["train"][1][:-1]))
    with pytest.raises(DatasetUnavailableError) as excinfo:
        SplitMNIST(root=root, verify_checksums=False)
    assert "holds 20 images but train-labels-idx1-ubyte holds 19 labels" in error_line(excinfo)


def test_missing_root_without_download_or_mirror(tmp_path):
    with pytest.raises(DatasetUnavailableError) as excinfo:
        SplitMNIST(root=tmp_path / "nowhere", mirror=tmp_path / "no-mirror")
    assert error_line(excinfo).startswith(
        f"MNIST: data root {tmp_path / 'nowhere'} (benchmark.root) does not exist, "
        f"and mirror {tmp_path / 'no-mirror'} is not a folder; set benchmark.download=true"
    )


def test_official_release_checks(fmnist_mirror, tmp_path, monkeypatch):
    mirror, _ = fmnist_mirror
    with pytest.raises(DatasetUnavailableError) as excinfo:
        SplitFMNIST(root=tmp_path / "a", mirror=mirror)
    assert (
        f"{mirror / 'train-images-idx3-ubyte.gz'} holds 20 items, the official release has "
        f"60000 (pass verify_checksums=False for custom files)" in error_line(excinfo)
    )
    monkeypatch.setitem(sources._OFFICIAL_IDX_COUNT, "train", 20)
    with pytest.raises(DatasetUnavailableError) as excinfo:
        SplitFMNIST(root=tmp_path / "b", mirror=mirror)
    assert "differs from the official release (md5 of its content" in error_line(excinfo)


def test_failed_download_is_one_line(tmp_path, monkeypatch):
    def offline(self, root):
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz:\nTried mirror, got:\n"
                           "<urlopen error [Errno -3] Temporary failure in name resolution>")

    monkeypatch.setattr(sources.IdxSource, "download", offline)
    with pytest.raises(DatasetUnavailableError) as excinfo:
        SplitMNIST(root=tmp_path, download=True)
    assert error_line(excinfo).startswith(
        f"MNIST: download into {tmp_path} failed (Error downloading train-images-idx3-ubyte.gz: "
        "Tried mirror, got: <urlopen error"
    )


@pytest.mark.parametrize("name", sorted(sources.SOURCES))
def test_file_lists_match_torchvision(name):
    source = sources.SOURCES[name]
    cls = source.tv_class
    if isinstance(source, sources.IdxSource):
        assert tuple(Path(gz).stem for gz, _ in cls.resources) == sources.IDX_FILES
    else:
        listed = [n for n, _ in cls.train_list + cls.test_list] + [cls.meta["filename"]]
        assert list(source.file_names) == listed
        assert (source.base_folder, source.archive) == (cls.base_folder, cls.filename)


# -- tensor cache ---------------------------------------------------------------------------------
def test_second_load_comes_from_the_cache(mnist_root, decode_calls):
    root, _ = mnist_root
    first = sources.load_vision_tensors("mnist", root, verify_checksums=False)
    cache = root / "cl_runner_cache" / "mnist.pt"
    stamp = cache.stat().st_mtime_ns
    second = sources.load_vision_tensors("mnist", root, verify_checksums=False)
    assert decode_calls == ["MNIST"]
    assert cache.stat().st_mtime_ns == stamp
    for name, tensor in vars(first).items():
        assert torch.equal(tensor, getattr(second, name))
    assert second.train_x.dtype == torch.uint8 and second.train_x.shape == (20, 1, 28, 28)


def test_cache_is_rebuilt_when_a_source_file_changes(mnist_root, decode_calls):
    root, release = mnist_root
    sources.load_vision_tensors("mnist", root, verify_checksums=False)
    labels = root / "MNIST" / "raw" / "t10k-labels-idx1-ubyte"
    labels.write_bytes(idx_bytes((release["test"][1] + 1) % 10))
    later = time.time_ns() + 10**9
    os.utime(labels, ns=(later, later))
    data = sources.load_vision_tensors("mnist", root, verify_checksums=False)
    assert decode_calls == ["MNIST", "MNIST"]
    assert data.test_y.tolist() == ((release["test"][1] + 1) % 10).tolist()


def test_unreadable_cache_counts_as_a_miss(mnist_root, decode_calls):
    root, _ = mnist_root
    sources.load_vision_tensors("mnist", root, verify_checksums=False)
    (root / "cl_runner_cache" / "mnist.pt").write_bytes(b"not a torch file")
    data = sources.load_vision_tensors("mnist", root, verify_checksums=False)
    assert decode_calls == ["MNIST", "MNIST"] and len(data.train_y) == 20


# -- PermutedMNIST --------------------------------------------------------------------------------
def test_permuted_mnist_applies_one_fixed_permutation_per_experience(mnist_root):
    root, release = mnist_root
    bench = PermutedMNIST(3, return_task_id=True, seed=5, root=root, verify_checksums=False)
    rng = np.random.RandomState(5)  # Avalanche's draw: one permutation(784) per experience
    perms = [rng.permutation(784) for _ in range(3)]
    assert bench.n_experiences == 3 and bench.input_shape == (1, 28, 28)
    for stream, split in ((bench.train_stream, "train"), (bench.test_stream, "test")):
        images, labels = release[split]
        for i, exp in enumerate(stream):
            x, y, t = exp.dataset.gather(torch.arange(len(exp.dataset)))
            expected = images.reshape(len(images), 784)[:, perms[i]].reshape(-1, 1, 28, 28)
            torch.testing.assert_close(x, normalised(expected, MNIST_STATS))
            assert y.tolist() == labels.tolist()
            assert t.unique().tolist() == [i] and exp.task_label == i
            assert exp.classes_in_this_experience == list(range(10))
    # a sample of experience 1 is the permuted source image of the same sample of experience 0
    source = release["train"][0][0].reshape(784)
    x0 = bench.train_stream[0].dataset[0][0].flatten()
    x1 = bench.train_stream[1].dataset[0][0].flatten()
    torch.testing.assert_close(x0, normalised(source[perms[0]], MNIST_STATS).flatten())
    torch.testing.assert_close(x1, normalised(source[perms[1]], MNIST_STATS).flatten())


def test_permuted_mnist_replay_mix_keeps_each_samples_permutation(mnist_root):
    root, _ = mnist_root
    bench = PermutedMNIST(2, seed=0, root=root, verify_checksums=False)
    old, new = bench.train_stream[0].dataset, bench.train_stream[1].dataset
    assert old.shares_storage(new)
    mixed = old.subset([3]).concat(new.subset([3]))
    x = mixed.gather(torch.arange(2))[0]
    torch.testing.assert_close(x[0], old[3][0])
    torch.testing.assert_close(x[1], new[3][0])
    assert not torch.equal(x[0], x[1])
    assert bench.train_stream[1].task_label == 0


def test_permuted_mnist_rejects_bad_n_experiences(tmp_path):
    with pytest.raises(SettingError) as excinfo:
        PermutedMNIST(0, root=tmp_path)
    assert error_line(excinfo) == "n_experiences=0 is not allowed: a positive integer"


# -- CIFAR ----------------------------------------------------------------------------------------
def test_split_cifar10_parses_pickled_batches(cifar10_root):
    root, files = cifar10_root
    bench = SplitCIFAR10(5, seed=1, root=root, verify_checksums=False)
    assert bench.input_shape == (3, 32, 32) and bench.n_classes == 10
    assert sum(len(e.dataset) for e in bench.train_stream) == 20
    assert sum(len(e.dataset) for e in bench.test_stream) == 10
    exp = bench.train_stream[2]
    rows = exp.dataset.storage_indices.numpy()
    x = exp.dataset.eval().gather(torch.arange(len(rows)))[0]
    torch.testing.assert_close(x, normalised(cifar_train_data(files)[rows], CIFAR10_STATS))


def test_cifar_augmentation_only_in_the_train_group(cifar10_root):
    root, _ = cifar10_root
    bench = SplitCIFAR10(1, root=root, verify_checksums=False)
    data = bench.train_stream[0].dataset
    positions = torch.arange(len(data))
    plain = data.eval().gather(positions)[0]
    torch.manual_seed(0)
    augmented = data.train().gather(positions)[0]
    torch.manual_seed(0)
    again = data.train().gather(positions)[0]
    assert augmented.shape == plain.shape == (20, 3, 32, 32)
    assert torch.equal(augmented, again) and not torch.equal(augmented, plain)
    test, positions = bench.test_stream[0].dataset, torch.arange(10)
    assert torch.equal(test.train().gather(positions)[0], test.eval().gather(positions)[0])


def test_cifar_checksums_name_the_file(cifar10_root):
    root, _ = cifar10_root
    with pytest.raises(DatasetUnavailableError) as excinfo:
        SplitCIFAR10(root=root)
    message = error_line(excinfo)
    assert message.startswith(
        f"CIFAR-10: {root / 'cifar-10-batches-py' / 'data_batch_1'} does not match the official "
        "release (md5 "
    )
    assert "pass verify_checksums=False for custom files" in message


def test_corrupt_cifar_pickle_is_one_line(cifar10_root):
    root, _ = cifar10_root
    (root / "cifar-10-batches-py" / "data_batch_3").write_bytes(b"\x80\x02garbage")
    with pytest.raises(DatasetUnavailableError) as excinfo:
        SplitCIFAR10(root=root, verify_checksums=False)
    assert error_line(excinfo).startswith(
        f"CIFAR-10: files in {root / 'cifar-10-batches-py'} could not be parsed ("
    )


@pytest.mark.parametrize("layout", ["archive", "folder"])
def test_cifar_mirror(tmp_path, layout):
    files = cifar_files(10, seed=2)
    mirror = tmp_path / "mirror"
    if layout == "archive":
        mirror.mkdir()
        with tarfile.open(mirror / "cifar-10-python.tar.gz", "w:gz") as tar:
            for name, content in files.items():
                data = pickle.dumps(content, protocol=2)
                info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    else:
        write_pickles(mirror / "cifar-10-batches-py", files)
    root = tmp_path / "root"
    bench = SplitCIFAR10(2, root=root, mirror=mirror, verify_checksums=False)
    assert sorted(p.name for p in (root / "cifar-10-batches-py").iterdir()) == sorted(files)
    assert sum(len(e.dataset) for e in bench.train_stream) == 20


def test_cifar_archive_without_a_needed_file(tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    with tarfile.open(mirror / "cifar-10-python.tar.gz", "w:gz") as tar:
        info = tarfile.TarInfo("cifar-10-batches-py/data_batch_1")
        tar.addfile(info, io.BytesIO(b""))
    with pytest.raises(DatasetUnavailableError) as excinfo:
        SplitCIFAR10(root=tmp_path / "root", mirror=mirror, verify_checksums=False)
    assert error_line(excinfo).startswith(
        f"CIFAR-10: {mirror / 'cifar-10-python.tar.gz'} lacks cifar-10-batches-py/data_batch_2;"
    )


def test_cifar_archive_that_is_not_an_archive(tmp_path):
    archive = tmp_path / "mirror" / "cifar-10-python.tar.gz"
    archive.parent.mkdir()
    archive.write_bytes(b"<html>404</html>")
    with pytest.raises(DatasetUnavailableError) as excinfo:
        SplitCIFAR10(root=tmp_path / "root", mirror=archive.parent)
    assert error_line(excinfo).startswith(f"CIFAR-10: {archive} is not a valid archive (")


def test_split_cifar100_uses_fine_labels(tmp_path):
    write_pickles(tmp_path / "cifar-100-python", cifar_files(100))
    bench = SplitCIFAR100(10, return_task_id=True, root=tmp_path, verify_checksums=False)
    assert bench.n_classes == 100 and bench.n_classes_per_exp == [10] * 10
    assert [len(e.dataset) for e in bench.train_stream] == [20] * 10
    assert [e.task_label for e in bench.test_stream] == list(range(10))


# -- Hydra presets --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "preset",
    sorted((CONF / "benchmark").glob("*.yaml")) + [
        CONF / "model" / "multihead_mlp.yaml", CONF / "model" / "simple_cnn.yaml"
    ],
    ids=lambda p: f"{p.parent.name}/{p.stem}",
)
def test_preset_keys_are_constructor_arguments(preset):
    cfg = OmegaConf.load(preset)
    cfg = cfg.get("benchmark", cfg)  # benchmark presets are _global_: their keys under benchmark
    params = inspect.signature(get_object(cfg._target_)).parameters
    assert set(cfg) - {"_target_", "defaults"} <= set(params)


def test_split_fmnist_preset_takes_its_mirror_from_the_environment(fmnist_mirror, tmp_path,
                                                                   monkeypatch):
    mirror, _ = fmnist_mirror
    monkeypatch.setenv("CL_RUNNER_FMNIST_MIRROR", str(mirror))
    cfg = OmegaConf.create({
        "seed": 4,
        "paths": {"data_root": str(tmp_path / "data")},
        "benchmark": OmegaConf.load(CONF / "benchmark" / "split_fmnist.yaml").benchmark,
    })
    cfg.benchmark.verify_checksums = False
    bench = instantiate(cfg.benchmark)
    assert bench.name == "split_fmnist"
    assert bench.classes_order == class_order(10, 4, None)
    assert (tmp_path / "data" / "FashionMNIST" / "raw" / "train-images-idx3-ubyte").is_file()


def test_multihead_preset_runs_on_task_labelled_batches(mnist_root):
    root, _ = mnist_root
    bench = SplitMNIST(5, return_task_id=True, root=root, verify_checksums=False)
    cfg = OmegaConf.load(CONF / "model" / "multihead_mlp.yaml")
    cfg.pop("defaults")  # the schema it extends (Hydra's defaults list), not an argument
    model = instantiate(cfg, num_classes=10, input_size=784, n_tasks=bench.n_experiences)
    x, _, t = bench.train_stream[3].dataset.gather(torch.arange(4))
    assert model(x, t).shape == (4, 10)


# -- the real Fashion-MNIST (Debian's dataset-fashion-mnist) -------------------------------------
@pytest.mark.slow
@pytest.mark.skipif(
    not DEBIAN_FMNIST.is_dir(),
    reason=f"{DEBIAN_FMNIST} absent: apt install dataset-fashion-mnist to run this test",
)
def test_full_fashion_mnist_from_the_debian_package(tmp_path, decode_calls):
    bench = SplitFMNIST(5, seed=0, root=tmp_path, mirror=DEBIAN_FMNIST)  # official checks on
    for stream, size in ((bench.train_stream, 60000), (bench.test_stream, 10000)):
        targets = torch.cat([e.dataset.targets for e in stream])
        assert len(targets) == size
        assert torch.bincount(targets).tolist() == [size // 10] * 10
    SplitFMNIST(5, seed=0, root=tmp_path, mirror=DEBIAN_FMNIST)
    assert decode_calls == ["Fashion-MNIST"]
