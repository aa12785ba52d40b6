"""Where the served networks run: ``AWESOMME_DEVICE`` (``auto``: the first CUDA device when there is one, else
the CPU; or ``cpu``, ``cuda``, ``cuda:<n>``). Every served network, the uncertainty strategy and ``/train`` use it."""

from __future__ import annotations

import torch

__all__ = ["DeviceUnavailable", "resolve_device"]


class DeviceUnavailable(RuntimeError):
    """The setting names a device this machine does not have."""


def resolve_device(setting: str) -> torch.device:
    """The device ``setting`` names on this machine (``auto`` resolved); a CUDA device that is not there is an
    error naming the setting, never a silent fall back to the CPU."""
    if setting == "auto":
        return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    device = torch.device("cuda:0" if setting == "cuda" else setting)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceUnavailable(f"AWESOMME_DEVICE={setting}, but this machine has no CUDA device")
        if (device.index or 0) >= torch.cuda.device_count():
            count = torch.cuda.device_count()
            raise DeviceUnavailable(f"AWESOMME_DEVICE={setting}, but this machine has {count} CUDA device(s)")
    return device
