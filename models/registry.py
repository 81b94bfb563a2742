"""A tiny model registry in the style of timm: `@register_model` on builders,
`create_model(name, **kwargs)`, `list_models(pattern)`.

A name of the form ``module.path:function`` refers to a user's own factory; it
is imported from ``sys.path`` and called with the same keyword arguments.
"""

from __future__ import annotations

import fnmatch
import importlib
import os
import sys
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

__all__ = [
    "ModelError",
    "register_model",
    "create_model",
    "list_models",
    "is_model",
    "resolve_factory",
]

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}


class ModelError(ValueError):
    """A model name, builder, argument or checkpoint the caller must change; the message
    says what and how (command lines print it as bad input, exit 2)."""


def register_model(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Register a builder under its function name (decorator).

    Args:
        fn: a function taking ``num_classes=`` (and any keywords of its own) and
            returning an ``nn.Module``.

    Returns:
        `fn` itself, now known by its name to training, checkpoints and `create_model`.
    """
    name = fn.__name__
    if name in _REGISTRY:
        raise ModelError(f"model {name!r} is already registered")
    _REGISTRY[name] = fn
    return fn


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching a shell-style `pattern`, in registration order."""
    return [n for n in _REGISTRY if fnmatch.fnmatch(n, pattern)]


def is_model(name: str) -> bool:
    """A name the package builds itself: registered, or a ``torchvision:``/``timm:`` model
    (a checkpoint may name these; a ``module:function`` of a user's is never trusted)."""
    return name in _REGISTRY or is_library_model(name)


def import_function(spec: str, what: str) -> Callable[..., Any]:
    """The function a ``module.path:function`` names: the project's one plugin importer.

    The module is imported from ``sys.path`` and, failing that, from the working
    directory, so a plugin beside the user works under ``python -m`` and under the
    console script alike (which starts without the working directory on ``sys.path``).
    `what` names the plugin in errors (e.g. ``"model 'mynets:build'"``).
    """
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ModelError(f"{what}: expected module.path:function, got {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        cwd = os.getcwd()
        if e.name != module_name.split(".")[0] or cwd in sys.path or "" in sys.path:
            raise ModelError(f"cannot import {module_name!r} for {what} ({e})") from e
        sys.path.insert(0, cwd)
        try:
            module = importlib.import_module(module_name)
        except ImportError as e2:
            raise ModelError(
                f"cannot import {module_name!r} for {what} ({e2}); "
                "make sure it is on sys.path (e.g. run from its directory)"
            ) from e2
        finally:
            sys.path.remove(cwd)
    except ImportError as e:
        raise ModelError(f"cannot import {module_name!r} for {what} ({e})") from e
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise ModelError(f"module {module_name!r} has no function {attr!r} ({what})")
    return fn


# Model libraries named by prefix: their models are built without downloading weights
# (a checkpoint supplies them). Named, not imported from a path: a file may name them.
LIBRARIES = ("torchvision", "timm")


def _library_factory(name: str) -> Callable[..., nn.Module]:
    """``torchvision:NAME`` or ``timm:NAME``: the library's classifier, no weights."""
    library, _, model = name.partition(":")
    if library == "torchvision":
        import torchvision.models

        known = torchvision.models.list_models(module=torchvision.models)
        if model not in known:
            raise ModelError(
                f"torchvision has no classification model {model!r}; e.g. "
                f"{', '.join(known[:6])}, ... (torchvision.models.list_models())"
            )
        return lambda **kwargs: torchvision.models.get_model(model, weights=None, **kwargs)
    try:
        import timm
    except ImportError:
        raise ModelError(
            f"--model {name} needs the timm package, which is not installed; pip install timm"
        ) from None
    if not timm.is_model(model):
        raise ModelError(f"timm has no model {model!r} (timm.list_models() lists them)")
    return lambda **kwargs: timm.create_model(model, pretrained=False, **kwargs)


def is_library_model(name: str) -> bool:
    return isinstance(name, str) and name.partition(":")[0] in LIBRARIES and ":" in name


def resolve_factory(name: str) -> Callable[..., nn.Module]:
    """The builder for a registered `name`, a ``torchvision:NAME`` / ``timm:NAME`` model,
    or a ``module.path:function`` factory."""
    if name in _REGISTRY:
        return _REGISTRY[name]
    if is_library_model(name):
        return _library_factory(name)
    if ":" in name:
        return import_function(name, f"model {name!r}")
    known = ", ".join(list_models())
    raise ModelError(
        f"unknown model {name!r}; known models: {known} (or module.path:function for your own)"
    )


def _physical_memory() -> int | None:
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # not POSIX
        return None


def _check_size(name: str, factory: Callable[..., nn.Module], kwargs: dict) -> None:
    """Build the network on the meta device first (no memory): one that cannot fit in this
    machine's memory is refused before it is allocated."""
    with torch.device("meta"):
        probe = factory(**kwargs)
    count = sum(t.numel() for t in (*probe.parameters(), *probe.buffers()))
    memory = _physical_memory()
    if memory is not None and 4 * count > memory:
        raise ModelError(
            f"model {name!r} with {kwargs} has {count:,} parameters ({4 * count / 2**30:,.0f} "
            f"GiB in float32), more than this machine's {memory / 2**30:,.0f} GiB; "
            "check --model-kwargs"
        )


def create_model(name: str, **kwargs) -> nn.Module:
    """Build model `name` with builder keyword arguments `kwargs`.

    Args:
        name: a registered or built-in name (``resnet20``, ``plain56``, ...), a
            ``torchvision:``/``timm:`` model, or a ``module:function`` of your own.
        **kwargs: the builder's keyword arguments (e.g. ``num_classes=10``).

    Returns:
        The module, carrying ``model_name`` and ``model_kwargs`` attributes so that a
        checkpoint can record how to rebuild it.
    """
    factory = resolve_factory(name)
    if name in _REGISTRY:  # a user's factory is called once only: it is their code
        _check_size(name, factory, kwargs)
    model = factory(**kwargs)
    if not isinstance(model, nn.Module):
        raise ModelError(f"model factory {name!r} returned {type(model).__name__}, not nn.Module")
    model.model_name = name
    model.model_kwargs = dict(kwargs)
    return model
