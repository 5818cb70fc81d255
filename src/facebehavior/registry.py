"""One small generic registry, used for models, detectors, datasets and metrics.

Names are resolved once, at the CLI/config boundary; an unknown name raises with the valid list.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")

__all__ = ["Registry", "MODELS", "DETECTORS", "DATASETS", "METRICS"]


class Registry(Generic[T]):
    """A name → object mapping filled by a decorator.

    Example:
        >>> R = Registry("widget")
        >>> @R.register("a")
        ... def make_a(): return 1
        >>> R.get("a")()
        1
    """

    def __init__(self, kind: str, loader: Callable[[], None] | None = None) -> None:
        """Args:
        kind: what is registered (used in error messages).
        loader: called once before the first lookup, to import the modules that register
            entries (keeps ``import facebehavior`` free of work).
        """
        self.kind = kind
        self._entries: dict[str, T] = {}
        self._loader = loader
        self._loaded = loader is None

    def _ensure_loaded(self) -> None:
        if not self._loaded:
            self._loaded = True
            assert self._loader is not None
            self._loader()

    def register(self, name: str | None = None) -> Callable[[T], T]:
        """Decorator registering an object under ``name`` (default: its ``__name__``)."""

        def deco(obj: T) -> T:
            key = name or obj.__name__  # type: ignore[attr-defined]
            if key in self._entries and self._entries[key] is not obj:
                raise ValueError(f"{self.kind} {key!r} is registered twice")
            self._entries[key] = obj
            return obj

        return deco

    def get(self, name: str) -> T:
        """Look up ``name``; raises ``KeyError`` listing the valid names if unknown.

        A name already registered (its module imported) is returned without running the loader, so
        one entry can be used without importing every module of the registry.
        """
        if name in self._entries:
            return self._entries[name]
        self._ensure_loaded()
        try:
            return self._entries[name]
        except KeyError:
            raise KeyError(f"unknown {self.kind} {name!r}; valid: {self.names()}") from None

    def names(self) -> list[str]:
        """Sorted registered names."""
        self._ensure_loaded()
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        self._ensure_loaded()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        self._ensure_loaded()
        return len(self._entries)


def _import(*modules: str) -> Callable[[], None]:
    def load() -> None:
        import importlib

        for m in modules:
            importlib.import_module(m)

    return load


def _load_models() -> None:
    import importlib

    importlib.import_module("facebehavior.models")._import_architectures()


MODELS: Registry[Callable[..., object]] = Registry("model", _load_models)


def _load_detectors() -> None:
    import importlib

    importlib.import_module("facebehavior.face.detect")._import_detectors()


DETECTORS: Registry[Callable[..., object]] = Registry("detector", _load_detectors)
DATASETS: Registry[Callable[..., object]] = Registry("dataset", _import("facebehavior.data.datasets"))
METRICS: Registry[Callable[..., object]] = Registry("metric", _import("facebehavior.metrics"))
