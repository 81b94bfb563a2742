"""`DataSpec`: the six data options as one record, from a flag, a keyword or a stored config.

Every command that loads data takes these options (``--dataset --data-root --download
--samples --subset --data-seed``, generated from the fields below) and every API
function takes the record (``data=DataSpec(...)``), so an option cannot be dropped on
the way: before this record, ``--download`` reached no loader of ``landscape compute``.
A surface file stores the record in its config (`DataSpec.to_json`, flat keys, as
files always had them) and `DataSpec.from_config` reads it back.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from landscape.core.errors import InputError
from landscape.core.fields import option
from landscape.data.datasets import (
    DEFAULT_DATA_ROOT,
    DEFAULT_DATASET,
    SUBSETS,
    DataTensors,
    is_plugin,
    load_split,
    take_subset,
)

__all__ = ["DATA_FIELDS", "DataSpec", "accepts_data_fields", "from_flat"]


@dataclass(frozen=True)
class DataSpec:
    """Which samples a job uses: a dataset, where it lives and which of its samples.

    Args:
        dataset: ``embedded`` (5,000 / 1,000 CIFAR-10 images shipped in the package) |
            ``cifar10`` | ``cifar100`` | ``imagefolder:DIR`` | ``module.path:function``.
        data_root: the folder of the CIFAR files (default ``./data``).
        download: let torchvision fetch CIFAR files that are missing (needs internet).
        samples: use N samples of each split (all when None).
        subset: which N: ``first`` or a seeded class-stratified random ``stratified`` subset.
        data_seed: the seed of ``subset="stratified"``.
    """

    dataset: str = option(
        "embedded (5,000 / 1,000 CIFAR-10 images shipped in the package) | cifar10 | "
        "cifar100 | imagefolder:DIR | module.path:function",
        default=DEFAULT_DATASET,
        metavar="NAME",
    )
    data_root: str | None = option(
        f"folder of the CIFAR files (./{DEFAULT_DATA_ROOT} when absent)", metavar="DIR"
    )
    download: bool = option(
        "download CIFAR files that are missing", default=False, action="store_true"
    )
    samples: int | None = option(
        "use N samples of each split (all when absent)", metavar="N", type="positive_int"
    )
    subset: str = option(
        "which N samples: the first N or a seeded class-stratified random subset",
        default="first",
        choices=SUBSETS,
    )
    data_seed: int = option("seed of --subset stratified", default=0, metavar="INT", type="seed")

    def __post_init__(self) -> None:
        if isinstance(self.data_root, os.PathLike):
            object.__setattr__(self, "data_root", os.fspath(self.data_root))
        for name, kind in (("dataset", str), ("subset", str), ("download", bool)):
            if not isinstance(getattr(self, name), kind):
                raise TypeError(
                    f"DataSpec.{name} must be {kind.__name__}, "
                    f"got {type(getattr(self, name)).__name__} {getattr(self, name)!r}"
                )
        if self.data_root is not None and not isinstance(self.data_root, str):
            raise TypeError(f"DataSpec.data_root must be a path, got {self.data_root!r}")
        for name in ("samples", "data_seed"):
            value = getattr(self, name)
            if value is None and name == "samples":
                continue
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(
                    f"DataSpec.{name} must be int, got {type(value).__name__} {value!r}"
                )
        if self.samples is not None and self.samples < 1:
            raise InputError(
                f"samples must be a positive integer; got {self.samples}", arg="samples"
            )
        if not 0 <= self.data_seed <= 2**63 - 1:  # what torch.Generator.manual_seed takes
            raise InputError(
                f"data_seed must be in 0..2**63 - 1; got {self.data_seed}", arg="data_seed"
            )
        if self.subset not in SUBSETS:
            raise InputError(
                f"subset must be one of {', '.join(SUBSETS)}; got {self.subset!r}", arg="subset"
            )

    def load(self, split: str, *, at_most: int | None = None) -> DataTensors:
        """The samples of `split` this record names.

        Args:
            split: ``"train"`` or ``"test"``.
            at_most: without `samples`, use at most this many (all of a smaller split);
                an explicit `samples` larger than the split is an error, the cap never is.

        Returns:
            The split as whole tensors (`DataTensors`), its choice recorded in ``info``.
        """
        data = load_split(
            self.dataset, split, data_root=self.data_root, download=self.download
        )  # read once, then take the subset
        samples = self.samples
        if samples is None and at_most is not None and len(data) > at_most:
            samples = at_most
        return take_subset(data, samples=samples, subset=self.subset, seed=self.data_seed)

    def to_json(self) -> dict[str, Any]:
        """The record as a surface file's config stores it (`download` is how, not what)."""
        return {
            f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "download"
        }

    @classmethod
    def from_config(cls, stored: Mapping[str, Any] | None, **given: Any) -> DataSpec:
        """The record a file's config holds, each setting in `given` (not None) first.

        A dataset function stored in a config is never imported unasked: a file never
        names code to run, so it must be given again as `dataset`.

        Args:
            stored: a surface's config (the settings it was computed with), or None.
            **given: settings that replace the stored ones (None: keep the stored one).

        Returns:
            The record, with the defaults where neither names a setting.
        """
        unknown = set(given) - set(DATA_FIELDS)
        if unknown:
            raise TypeError(f"DataSpec has no settings {sorted(unknown)}")
        stored = stored or {}
        values = {
            name: given[name] if given.get(name) is not None else stored.get(name)
            for name in DATA_FIELDS
        }
        if given.get("dataset") is None and is_plugin(values["dataset"]):
            raise InputError(
                f"the surface was computed on the dataset {values['dataset']!r}, a function of "
                f"your own; a file never names code to run - pass dataset {values['dataset']} "
                "to use it",
                arg="dataset",
            )
        return cls(**{k: v for k, v in values.items() if v is not None})


DATA_FIELDS = tuple(f.name for f in dataclasses.fields(DataSpec))

C = TypeVar("C")


def from_flat(cls: type[C], flat: Mapping[str, Any]) -> C:
    """The settings record `cls` (with a ``data: DataSpec`` field) from its flat form, the
    data's six settings beside the record's own, as files store it; settings neither
    knows are ignored (a file of a later version may hold more)."""
    known = {f.name for f in dataclasses.fields(cls)} - {"data"}  # type: ignore[arg-type]
    data = DataSpec(**{k: v for k, v in flat.items() if k in DATA_FIELDS})
    return cls(data=data, **{k: v for k, v in flat.items() if k in known})  # type: ignore[call-arg]


def accepts_data_fields(cls: type[C]) -> type[C]:
    """Let a settings record with a ``data: DataSpec`` field also take the six data
    settings as keywords of its own (``SurfaceConfig(samples=128)``), as earlier versions
    did: they fill its `data` (given as a `DataSpec`, a mapping or not at all)."""
    init: Callable[..., None] = cls.__init__  # type: ignore[misc]

    @functools.wraps(init)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        flat = {k: kwargs.pop(k) for k in DATA_FIELDS if k in kwargs}
        data = kwargs.get("data")
        if isinstance(data, Mapping):
            data = DataSpec(**data)
        elif data is None:
            data = DataSpec()
        if not isinstance(data, DataSpec):
            raise TypeError(f"{cls.__name__}.data must be a DataSpec, got {type(data).__name__}")
        try:
            kwargs["data"] = dataclasses.replace(data, **flat) if flat else data
        except TypeError as e:  # name the record the caller built
            raise TypeError(str(e).replace("DataSpec.", f"{cls.__name__}.")) from None
        init(self, *args, **kwargs)

    cls.__init__ = __init__  # type: ignore[misc]
    return cls
