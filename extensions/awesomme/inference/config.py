"""The schema of a segmentation model's YAML (``kind: segmentation``), validated with pydantic.

Networks and transforms come from allow-lists of MONAI classes, never from an arbitrary importable name, so a
YAML can configure a model but cannot run code.
"""

from __future__ import annotations

import inspect
import logging
from pathlib import Path
from typing import Any, Literal

import monai.networks.nets as monai_networks
import monai.transforms as monai_transforms
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from awesomme.core.config_files import load_config_directory

__all__ = [
    "ALLOWED_NETWORKS",
    "ALLOWED_POST_TRANSFORMS",
    "ALLOWED_PRE_TRANSFORMS",
    "GEOMETRY_PRE_TRANSFORMS",
    "ConfigError",
    "InferenceSpec",
    "SegmentationModelConfig",
    "TransformStep",
    "load_config_file",
    "load_segmentation_configs",
]

logger = logging.getLogger(__name__)

ALLOWED_NETWORKS = ("UNet", "BasicUNet", "SegResNet", "DynUNet", "AttentionUnet", "UNETR", "SwinUNETR")
# Steps that move voxels: the label map goes back through their inverse (nearest neighbour) onto the series' grid
GEOMETRY_PRE_TRANSFORMS = ("Orientation", "Spacing", "CropForeground", "Resize", "SpatialPad", "DivisiblePad")
ALLOWED_PRE_TRANSFORMS = (
    "ScaleIntensityRange",
    "ScaleIntensityRangePercentiles",
    "NormalizeIntensity",
    "ScaleIntensity",
    "ScaleIntensityFixedMean",
    "ClipIntensityPercentiles",
    "ThresholdIntensity",
    *GEOMETRY_PRE_TRANSFORMS,
)
ALLOWED_POST_TRANSFORMS = ("KeepLargestConnectedComponent", "FillHoles", "RemoveSmallObjects")
SEGMENTATION_KIND = "segmentation"
# Arguments a YAML may not set whatever the class: callables, lazy resampling, return shapes predict does not expect
FORBIDDEN_ARGUMENTS = frozenset(
    {"lazy", "select_fn", "return_coords", "return_clipping_values", "dtype", "kwargs", "pad_kwargs", "norm_layer"}
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def check_arguments(what: str, target: Any, args: dict[str, Any]) -> None:
    """Refuse, by name, arguments the class does not take or that a YAML may not set."""
    parameters = inspect.signature(target).parameters
    for argument in args:
        if argument in FORBIDDEN_ARGUMENTS or argument not in parameters:
            raise ValueError(f"{what} does not take the argument {argument!r}")


class TransformStep(_Strict):
    name: str
    args: dict[str, Any] = Field(default_factory=dict)


class NetworkSpec(_Strict):
    name: str
    args: dict[str, Any]

    @model_validator(mode="after")
    def _allowed(self) -> NetworkSpec:
        if self.name not in ALLOWED_NETWORKS:
            raise ValueError(f"network {self.name!r} is not one of {', '.join(ALLOWED_NETWORKS)}")
        check_arguments(f"network {self.name}", getattr(monai_networks, self.name), self.args)
        return self


class WeightsSpec(_Strict):
    file: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class InferenceSpec(_Strict):
    """How the network sees a volume; the platform's arrays are (slice, row, column), i.e. torch's (D, H, W).

    ``axes`` is the order the network was trained on: ``zyx`` = (slice, row, column), as our trainers feed it;
    ``xyz`` = (column, row, slice), the order of MONAI's ``LoadImage``, which most MONAI-trained weights expect.
    ``slices`` runs a 2D network on each slice, in windows of ``roi_size`` (in-plane, in ``axes`` order);
    ``sliding_window`` runs a 3D network on windows of ``roi_size`` (in ``axes`` order). ``sw_batch_size`` windows
    go through the network together; on a CPU they run side by side, each on its share of the threads.
    ``downsample`` (slice, row, column integer factors) averages the input down and brings the logits back up.
    ``threshold`` (models with one label): a voxel is labelled when its label's probability exceeds it; without
    it, the most probable class wins (the same as 0.5).
    """

    mode: Literal["slices", "sliding_window"]
    axes: Literal["zyx", "xyz"] = "zyx"
    roi_size: tuple[int, ...] = ()
    sw_batch_size: int = Field(default=4, ge=1)
    overlap: float = Field(default=0.25, ge=0, lt=1)
    downsample: tuple[int, int, int] = (1, 1, 1)
    threshold: float | None = Field(default=None, gt=0, lt=1)

    @property
    def slices_needed(self) -> int:
        """The fewest slices a series needs: one for a 2D model; a 3D model's window depth (in the series' own
        slices, before any down-sampling) for a 3D one."""
        if self.mode == "slices":
            return 1
        depth = self.roi_size[0] if self.axes == "zyx" else self.roi_size[2]
        return depth * self.downsample[0]

    @model_validator(mode="after")
    def _roi(self) -> InferenceSpec:
        expected = 2 if self.mode == "slices" else 3
        if len(self.roi_size) != expected:
            raise ValueError(f"{self.mode} needs roi_size as {expected} integers")
        if min(self.downsample) < 1:
            raise ValueError("downsample factors must be at least 1")
        return self


class SegmentationModelConfig(_Strict):
    kind: Literal["segmentation"]
    name: str = Field(pattern=r"^[a-z][a-z0-9_]{1,63}$")
    version: str
    modality: Literal["CT", "MR"]
    labels: dict[str, int]
    network: NetworkSpec
    weights: WeightsSpec
    inference: InferenceSpec
    pre_transforms: list[TransformStep] = Field(default_factory=list)
    post_transforms: list[TransformStep] = Field(default_factory=list)
    cohorts: list[str] = Field(default_factory=list)
    demo_weights: bool
    intended_use: str
    training: dict[str, Any]
    validation: dict[str, Any]
    expected_runtime_s: dict[str, float] = Field(default_factory=dict)
    source: Path | None = None

    @field_validator("labels")
    @classmethod
    def _labels(cls, labels: dict[str, int]) -> dict[str, int]:
        values = list(labels.values())
        if not labels or sorted(values) != list(range(1, len(values) + 1)):
            raise ValueError("labels must map names to the values 1..N (0 is background)")
        return labels

    @model_validator(mode="after")
    def _threshold_needs_one_label(self) -> SegmentationModelConfig:
        if self.inference.threshold is not None and len(self.labels) != 1:
            raise ValueError("inference.threshold applies to models with one label only")
        return self

    @field_validator("pre_transforms")
    @classmethod
    def _pre(cls, steps: list[TransformStep]) -> list[TransformStep]:
        return _check_steps(steps, ALLOWED_PRE_TRANSFORMS, "pre")

    @field_validator("post_transforms")
    @classmethod
    def _post(cls, steps: list[TransformStep]) -> list[TransformStep]:
        return _check_steps(steps, ALLOWED_POST_TRANSFORMS, "post")

    @property
    def resamples(self) -> bool:
        """Whether pre-processing moves voxels (spacing, orientation, crop, resize, pad): then ``predict`` needs
        the series' affine and brings the label map back onto the series' grid."""
        return any(step.name in GEOMETRY_PRE_TRANSFORMS for step in self.pre_transforms)

    @property
    def description(self) -> str:
        demo = " (DEMO weights - not for clinical use)" if self.demo_weights else ""
        return f"{self.name} {self.version}: {', '.join(self.labels)} on {self.modality}{demo}"


def _check_steps(steps: list[TransformStep], allowed: tuple[str, ...], where: str) -> list[TransformStep]:
    for step in steps:
        if step.name not in allowed:
            raise ValueError(f"{where}-processing step {step.name!r} is not one of {', '.join(allowed)}")
        check_arguments(f"{where}-processing step {step.name}", getattr(monai_transforms, step.name), step.args)
    return steps


class ConfigError(ValueError):
    """A model YAML that cannot be used, with the reason."""


def load_config_file(path: Path) -> SegmentationModelConfig | None:
    """The segmentation config in ``path``; None for a YAML of another kind."""
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise ConfigError(f"not readable YAML: {error}") from error
    if not isinstance(raw, dict) or raw.get("kind") != SEGMENTATION_KIND:
        return None
    try:
        return SegmentationModelConfig(**raw, source=path)
    except ValidationError as error:
        raise ConfigError("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())) from error


def load_segmentation_configs(directory: Path) -> tuple[dict[str, SegmentationModelConfig], dict[str, str]]:
    """Every ``kind: segmentation`` YAML in ``directory``; other kinds are left to their own loaders.

    Returns the valid configs by name, and for each file that failed, the reason (so health can report it).
    """
    return load_config_directory(directory, load_config_file, ConfigError, "Model")
