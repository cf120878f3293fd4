"""aiogram's Telegram types build their pydantic schemas when first used, not all at import.

aiogram declares its ~400 types with pydantic's ``defer_build`` and then, at the end of
``aiogram.types``, rebuilds every one of them with a namespace that resolves their forward
references (the names each type's module imports for type checking only). Each of those
rebuilds makes its type's schema from scratch, with every type it nests (a ``Message`` holds
most of the others), so together they were three quarters of importing aiogram (3 of 4 s on a
slow day) and half of the start of every process that talks to Telegram (the bot, the worker),
which use a few dozen of the types.

The finder below runs aiogram's import with those rebuilds skipped and keeps the namespace they
were given; once aiogram is imported, each module of ``aiogram.types`` gets the names of that
namespace it lacks, so that whichever model first needs a type (the type itself, a method, a
``Response[list[Update]]``) pydantic resolves it from the type's own module, as it resolves any
other model's. The schemas are the same (``tests/test_telegram_schemas.py`` compares every
type's and method's with aiogram's own import, and parses answers through aiogram's session).

A first use builds what it needs once (a tenth of a second for ``Update``, which nests most
other types). pydantic's deferred build is not safe to start from two threads at once; aiogram
runs on its process's event loop, in one thread.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import types
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

_PACKAGE = "aiogram"
_TYPES = "aiogram.types."


def defer_telegram_schemas() -> None:
    """Have aiogram, when it is imported, leave its types' schemas to their first use. Call
    before aiogram is imported (``bot/__init__.py`` and ``worker/__init__.py`` do); once it is,
    this does nothing."""
    if _PACKAGE in sys.modules or any(isinstance(f, _Finder) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, _Finder())


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: types.ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != _PACKAGE:
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and isinstance(spec.loader, importlib.abc.Loader):
            spec.loader = _Loader(spec.loader)
        return spec


class _Loader(importlib.abc.Loader):
    def __init__(self, loader: importlib.abc.Loader) -> None:
        self.loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: types.ModuleType) -> None:
        namespace: dict[str, Any] = {}
        eager = BaseModel.__dict__["model_rebuild"]

        def skip(cls: type[BaseModel], /, **options: Any) -> bool | None:
            given = options.get("_types_namespace")
            if given is None or not cls.__module__.startswith(_TYPES):
                # Any other rebuild goes through as it was, one frame deeper: one that reads
                # its caller's namespace must look one further up.
                depth = options.get("_parent_namespace_depth", 2)
                if depth > 0:
                    options["_parent_namespace_depth"] = depth + 1
                result: bool | None = eager.__func__(cls, **options)
                return result
            namespace.update(given)  # aiogram's loop passes the same one to every type
            return None

        # Only while aiogram is imported (aiogram.types' loop is the one caller that passes a
        # namespace); methods that nest a type not yet resolvable are left, as pydantic leaves
        # any such model, to be built on first use.
        BaseModel.model_rebuild = classmethod(skip)  # type: ignore[method-assign,assignment]
        try:
            self.loader.exec_module(module)
        finally:
            BaseModel.model_rebuild = eager  # type: ignore[method-assign]
        for name, loaded in list(sys.modules.items()):
            if name.startswith(_TYPES) and loaded is not None:
                for key, value in namespace.items():
                    loaded.__dict__.setdefault(key, value)
