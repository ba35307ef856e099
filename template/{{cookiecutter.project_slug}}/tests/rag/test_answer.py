import re

import pytest

from {{ cookiecutter.package_name }}.config import ConfigError
from {{ cookiecutter.package_name }}.rag.answer import NOT_IN_DOCS
from {{ cookiecutter.package_name }}.rag.answer_types import (
    expected_type,
    focus_terms,
    has_type,
    question_entities,
)
from {{ cookiecutter.package_name }}.rag.config import RagConfig
from {{ cookiecutter.package_name }}.rag.pipeline import Pipeline

CITATION = re.compile(r"\[\d\] [\w./-]+\.md$")


def test_extractive_answer_cites_its_source(shipped):
    answer = shipped.ask("How many layers does the tiny model have?")
    assert not answer.abstained
    assert "4 layers" in answer.text
    assert CITATION.search(answer.text) and "training.md" in answer.text
    assert answer.sources[0] == {**answer.sources[0], "n": 1, "file": "training.md"}
    assert set(answer.sources[0]) == {"n", "file", "snippet", "score"}
    assert "4 layers" in answer.context


def test_answers_are_short(shipped):
    for q in ["What is the reciprocal rank fusion constant?", "Which licenses are available?"]:
        answer = shipped.ask(q)
        assert 1 <= len(answer.sentences) <= 2
        assert sum(len(s.split()) for s in answer.sentences) <= 60


def test_a_pronoun_sentence_brings_its_antecedent(shipped):
    answer = shipped.ask("Which command installs the dependencies?")
    assert "uv sync" in answer.text


@pytest.mark.parametrize(
    "question",
    [
        "What is the capital of Australia?",  # off topic
        "How many parameters does the tiny model have?",  # near miss: never given
        "What is the error code when the index is stale?",  # near miss: no code given
        "How much does a GPU cloud machine cost per hour for training?",  # no amount
    ],
)
def test_abstains_when_the_documents_do_not_answer(shipped, question):
    answer = shipped.ask(question)
    assert answer.abstained and answer.text == NOT_IN_DOCS
    assert answer.reason


def test_empty_question_abstains(shipped):
    assert shipped.ask("   ").abstained


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("How many people live in Oakmere?", "number"),
        ("When was the bridge built?", "date"),
        ("On which day is the market held?", "date"),
        ("What does the K3 cost?", "amount"),
        ("What is the postcode of the centre?", "code"),
        ("Who is the mayor?", "name"),
        ("Which version of Gradio does the demo need?", "version"),
        ("Which optimizer is used?", None),
    ],
)
def test_expected_type(question, kind):
    assert expected_type(question) == kind


def test_has_type_ignores_what_the_question_already_says():
    assert has_type("The town has 18,400 inhabitants.", "number")
    assert not has_type("The population has grown steadily.", "number")
    assert not has_type("Model K2 is light.", "number", "How heavy is the K2?")
    assert has_type("It costs 1,899 euros.", "amount")
    assert not has_type("It is sold through dealers for 4 years.", "amount")
    assert has_type("The market charter dates from 1284.", "date")
    assert has_type("The code is OM9 7RT.", "code")
    assert has_type("The mayor is Anna Brecht.", "name")
    assert has_type("You need Python 3.10 or newer.", "version")
    assert not has_type("It starts in under 10 seconds.", "version")
    assert question_entities("How much does the Kestrel K3 cost?") == ["kestrel", "k3"]
    assert focus_terms("How many parameters does it have?") == ["parameters"]
    assert focus_terms("What dropout rate is used?") == ["dropout"]
    assert focus_terms("Who is the author?") == ["author"]


def test_generative_answerer_needs_a_model():
    with pytest.raises(ConfigError, match="generator"):
        RagConfig(answerer="generative")


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory):
    """A ~50k-parameter GPT-2 built from a config with a tokenizer trained by `tokenizers`,
    taught one sentence for a few steps, saved and reloaded with from_pretrained (offline)."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    folder = tmp_path_factory.mktemp("tiny-lm")
    target = "Answer: The default seed is 1337.<eos>"
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=["<unk>", "<eos>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator([target, "Question: which seed? [1] training.md sources"], trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<eos>", unk_token="<unk>")
    config = GPT2Config(
        vocab_size=len(fast), n_positions=1024, n_embd=32, n_layer=1, n_head=2,
        eos_token_id=fast.eos_token_id, bos_token_id=fast.eos_token_id,
    )  # fmt: skip
    torch.manual_seed(0)
    model = GPT2LMHeadModel(config)
    ids = fast(target, return_tensors="pt")["input_ids"]
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(60):
        loss = model(ids, labels=ids).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.save_pretrained(folder)
    fast.save_pretrained(folder)
    return folder


def test_generative_answerer_with_a_tiny_local_model(shipped, tiny_lm):
    config = RagConfig(answerer="generative", generator=str(tiny_lm), max_new_tokens=16)
    pipe = Pipeline(shipped.index, config, shipped.embedder)
    first = pipe.ask("What is the default seed?")
    again = pipe.ask("What is the default seed?")
    assert first.text == again.text  # greedy decoding is deterministic
    assert not first.abstained, first.reason
    assert first.reason == "generative"
    assert 1 <= len(first.sentences) <= 2
    assert CITATION.search(first.text) and "training.md" in first.text
    # The evidence gate still applies: no generation for a question the docs cannot answer.
    assert pipe.ask("How many parameters does the tiny model have?").abstained


def test_code_is_never_given_as_an_answer(tmp_path, embedder):
    """A question whose only match is a code block abstains; the prose around it still answers."""
    from {{ cookiecutter.package_name }}.rag.index import build_index
    from {{ cookiecutter.package_name }}.rag.pipeline import load_pipeline

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "serve.md").write_text(
        "# Serving\n\nStart the server with the serve command.\n\n"
        "```bash\nserve --workers 4 --memory 2GB\n```\n",
        encoding="utf-8",
    )
    build_index(docs, tmp_path / "index", RagConfig(), embedder)
    pipe = load_pipeline(tmp_path / "index", RagConfig(), embedder)
    assert pipe.ask("How much memory does the server need?").abstained
    assert not pipe.ask("How do I start the server?").abstained
