"""LLM workloads: corpus, embeddings, vector index, RAG chains, gateway."""
