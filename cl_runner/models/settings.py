"""Settings of the networks as structured configs (Hydra's ConfigStore), readable without torch.

Each dataclass is the schema of one ``conf/model/`` option: OmegaConf checks the value types,
the field rules check their ranges, and ``check_stream`` checks them against what the
benchmark declares (classes, input shape), all before torch or any data is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

from cl_runner.checks import FRACTION, POSITIVE_INT, Rule, SettingError, Settings, setting

if TYPE_CHECKING:
    from cl_runner.benchmarks.info import StreamInfo

OPTIONAL_POSITIVE = Rule(lambda v: v is None or POSITIVE_INT.test(v),
                         "null (taken from the benchmark) or a positive integer")


@dataclass
class ModelSettings(Settings):
    """Fields every model option shares; ``None`` counts are taken from the benchmark."""

    _target_: str = ""
    num_classes: Optional[int] = setting(None, OPTIONAL_POSITIVE)  # noqa: UP045 - OmegaConf

    def check_stream(self, stream: StreamInfo) -> None:
        """Raise ``SettingError`` for a setting the benchmark's stream cannot work with."""
        if self.num_classes is not None and self.num_classes < stream.n_classes:
            raise SettingError("num_classes", self.num_classes,
                               f"at least {stream.n_classes} (the benchmark has "
                               f"{stream.n_classes} classes), or null")

    def n_parameters(self, stream: StreamInfo) -> int:
        """How many parameters the network will have (to refuse what cannot fit)."""
        raise NotImplementedError

    def layer_names(self) -> list[str]:
        """Names of the submodules a feature-based selection may hook."""
        return ["features", "classifier"]


@dataclass
class SimpleMLPSettings(ModelSettings):
    _target_: str = "cl_runner.models.SimpleMLP"
    input_size: Optional[int] = setting(None, OPTIONAL_POSITIVE)  # noqa: UP045
    hidden_size: int = setting(512, POSITIVE_INT)
    hidden_layers: int = setting(1, POSITIVE_INT)
    drop_rate: float = setting(0.5, FRACTION)

    def check_stream(self, stream: StreamInfo) -> None:
        super().check_stream(stream)
        if self.input_size is not None and self.input_size != stream.input_size:
            raise SettingError("input_size", self.input_size,
                               f"{stream.input_size} (the benchmark's inputs have shape "
                               f"{stream.input_shape}), or null")

    def n_parameters(self, stream: StreamInfo) -> int:
        width, total = stream.input_size, 0
        for _ in range(self.hidden_layers):
            total += (width + 1) * self.hidden_size
            width = self.hidden_size
        return total + (width + 1) * (self.num_classes or stream.n_classes)

    def layer_names(self) -> list[str]:
        blocks = [f"features.{i}" for i in range(1 + 3 * self.hidden_layers)]
        return ["features", *blocks, "classifier"]


@dataclass
class MultiHeadMLPSettings(SimpleMLPSettings):
    _target_: str = "cl_runner.models.MultiHeadMLP"
    n_tasks: Optional[int] = setting(None, OPTIONAL_POSITIVE)  # noqa: UP045

    def check_stream(self, stream: StreamInfo) -> None:
        super().check_stream(stream)
        if self.n_tasks is not None and self.n_tasks < stream.n_tasks:
            raise SettingError("n_tasks", self.n_tasks,
                               f"at least {stream.n_tasks} (one head per task), or null")

    def n_parameters(self, stream: StreamInfo) -> int:
        heads = self.n_tasks or stream.n_experiences
        head = (self.hidden_size + 1) * (self.num_classes or stream.n_classes)
        return super().n_parameters(stream) + (heads - 1) * head

    def layer_names(self) -> list[str]:
        return [n for n in super().layer_names() if n != "classifier"]


@dataclass
class SimpleCNNSettings(ModelSettings):
    _target_: str = "cl_runner.models.SimpleCNN"
    in_channels: Optional[int] = setting(None, OPTIONAL_POSITIVE)  # noqa: UP045
    width: int = setting(32, POSITIVE_INT)

    def check_stream(self, stream: StreamInfo) -> None:
        super().check_stream(stream)
        if len(stream.input_shape) != 3:
            raise SettingError("_target_", self._target_,
                               f"a model for flat inputs (the benchmark's inputs have shape "
                               f"{stream.input_shape}; a CNN needs (channels, height, width)): "
                               "model=mlp")
        channels = stream.input_shape[0]
        if self.in_channels is not None and self.in_channels != channels:
            raise SettingError("in_channels", self.in_channels,
                               f"{channels} (the benchmark's images have {channels}), or null")

    def n_parameters(self, stream: StreamInfo) -> int:
        c, w = stream.input_shape[0], self.width
        conv = (9 * c + 1) * w + (9 * w + 1) * w + (9 * w + 1) * 2 * w + (18 * w + 1) * 2 * w
        batch_norm = 2 * (2 * w) + 2 * (4 * w)
        return conv + batch_norm + (2 * w + 1) * (self.num_classes or stream.n_classes)


SCHEMAS = {"simple_mlp": SimpleMLPSettings, "multihead_mlp": MultiHeadMLPSettings,
           "simple_cnn": SimpleCNNSettings}
