"""Checkpoints shipped inside the package, named ``pretrained:NAME``."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from .errors import InputError

__all__ = ["PREFIX", "list_pretrained", "resolve_checkpoint"]

PREFIX = "pretrained:"


def _folder() -> Path:
    return Path(str(resources.files("landscape") / "assets" / "pretrained"))


def list_pretrained() -> list[str]:
    """Names of the shipped checkpoints (``landscape pretrained`` prints them)."""
    folder = _folder()
    return sorted(p.stem for p in folder.glob("*.pt")) if folder.is_dir() else []


def resolve_checkpoint(spec: str) -> Path:
    """A checkpoint path from a path or ``pretrained:NAME``; errors name what exists."""
    if not spec.startswith(PREFIX):
        return Path(spec)
    name = spec[len(PREFIX) :]
    path = _folder() / f"{name}.pt"
    if not path.is_file():
        known = ", ".join(list_pretrained()) or "none shipped in this version"
        raise InputError(f"no pretrained checkpoint {name!r}; available: {known}")
    return path
