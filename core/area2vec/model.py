"""Area2Vec's parameters and what they predict (SPEC §3), in numpy.

The model is an embedding table ``E`` (areas x dim) and a decoder ``W`` (168 x dim) without bias;
``softmax(e_m W^T)`` approximates area m's token distribution. The saved state dict uses the
OpenUAS keys ``embedding.weight`` and ``decode_linear.weight``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.typing import DTypeLike

from core.atomic import atomic_path
from core.constants import N_TOKENS
from core.errors import InputError

EMBEDDING_KEY = "embedding.weight"
DECODER_KEY = "decode_linear.weight"


def softmax_rows(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax, numerically stable."""
    z = logits - logits.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z


def predict_distributions(
    embeddings: np.ndarray, decoder: np.ndarray, chunk: int = 65536, dtype: DTypeLike = np.float64
) -> np.ndarray:
    """``f_hat = softmax(E W^T)`` for each area (areas x 168; float64, or float32 for display)."""
    embeddings = np.asarray(embeddings, dtype=dtype)
    decoder = np.asarray(decoder, dtype=dtype)
    out = np.empty((embeddings.shape[0], decoder.shape[0]), dtype=dtype)
    for start in range(0, embeddings.shape[0], chunk):
        out[start : start + chunk] = softmax_rows(embeddings[start : start + chunk] @ decoder.T)
    return out


def save_state_dict(path: Path, embeddings: np.ndarray, decoder: np.ndarray) -> None:
    """Save an OpenUAS-layout state dict (``embedding.weight``, ``decode_linear.weight``) atomically."""
    import torch

    state = {
        EMBEDDING_KEY: torch.from_numpy(np.ascontiguousarray(embeddings, dtype=np.float32)),
        DECODER_KEY: torch.from_numpy(np.ascontiguousarray(decoder, dtype=np.float32)),
    }
    with atomic_path(Path(path)) as tmp:
        torch.save(state, tmp)


def load_state_dict(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Load ``(embeddings, decoder)`` from an OpenUAS model file (read with ``weights_only=True``).

    Raises:
        InputError: when the file is not a state dict with the two expected tensors.
    """
    import torch

    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file
        raise InputError(path.name, f"cannot be read as a PyTorch state dict: {exc}") from exc
    if not isinstance(state, dict) or EMBEDDING_KEY not in state or DECODER_KEY not in state:
        keys = sorted(state) if isinstance(state, dict) else type(state).__name__
        raise InputError(
            path.name, f"is not an Area2Vec state dict (found {keys})", expected=f"keys {EMBEDDING_KEY}, {DECODER_KEY}"
        )
    emb = state[EMBEDDING_KEY].detach().cpu().numpy()
    dec = state[DECODER_KEY].detach().cpu().numpy()
    if emb.ndim != 2 or dec.ndim != 2 or dec.shape[0] != N_TOKENS or dec.shape[1] != emb.shape[1]:
        raise InputError(
            path.name,
            f"tensor shapes {tuple(emb.shape)} and {tuple(dec.shape)} do not fit",
            expected=f"{EMBEDDING_KEY} (areas x d) and {DECODER_KEY} ({N_TOKENS} x d)",
        )
    return emb, dec
