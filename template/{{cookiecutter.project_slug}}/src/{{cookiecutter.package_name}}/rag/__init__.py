"""Retrieval-augmented question answering over a folder of documents.

The pieces, in the order a question flows through them:
ingest (read files) -> chunking (split into chunks and sentences) -> embed (vectors) ->
index (faiss + chunks + manifest on disk) -> retrieve (dense + BM25, fused) -> rerank (optional)
-> answer (extractive or generative, with citations) -> evaluate (metrics on a QA file).
`pipeline.load_pipeline` wires them together; `cli.add_parser` exposes them as commands
(the core CLI finds it).
"""
