"""configs/rag.yaml goes through the core typed loader: wrong types and values name the key."""

import dataclasses

import pytest

from {{ cookiecutter.package_name }}.cli import main
from {{ cookiecutter.package_name }}.config import ConfigError, describe
from {{ cookiecutter.package_name }}.errors import UserError
from {{ cookiecutter.package_name }}.rag.config import RagConfig, load_config
from {{ cookiecutter.package_name }}.rag.errors import RagError

from .conftest import HERE


def write(tmp_path, text):
    path = tmp_path / "rag.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_and_the_shipped_file(tmp_path):
    assert load_config(None, tmp_path) == RagConfig()  # no configs/rag.yaml: the defaults
    shipped = load_config(None, HERE.parents[1])  # the project's own configs/rag.yaml
    assert shipped.k == 5 and shipped.chunk_size == 400


def test_values_are_typed_and_the_rag_key_is_optional(tmp_path):
    config = load_config(write(tmp_path, "k: '3'\nmmr: yes\nexclude: [zh/*, drafts/*]\n"))
    assert config.k == 3 and config.mmr is True and config.exclude == ["zh/*", "drafts/*"]
    config = load_config(write(tmp_path, "rag:\n  chunk_size: 200\ntrain:\n  lr: 1\n"))
    assert config.chunk_size == 200


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("chunk_size: abc", "rag.chunk_size: expected an integer, got 'abc'"),
        ("min_similarity: .nan", "rag.min_similarity: expected a finite number"),
        ("mmr: maybe", "rag.mmr: expected true or false"),
        ("chunk_sise: 3", "unknown config key 'rag.chunk_sise'"),
        ("fusion: magic", "rag.fusion: 'magic' is not one of rrf, dense, bm25"),
        ("k: -3", "rag.k must be at least 1, got -3"),
        ("chunk_overlap: 500", "rag.chunk_overlap must be >= 0 and smaller than rag.chunk_size"),
        ("answerer: generative", "rag.answerer 'generative' needs rag.generator"),
        ("[1, 2]", "must be a mapping of RAG settings"),
        ("rag: 5", "rag: must be a mapping"),
    ],
)
def test_mistakes_name_the_key(tmp_path, text, message):
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text + "\n"))
    assert message in str(info.value)


def test_errors_are_user_errors_and_the_cli_prints_one_line(tmp_path, monkeypatch, capsys):
    assert issubclass(RagError, UserError) and issubclass(ConfigError, UserError)
    write(tmp_path, "chunk_size: abc\n")
    monkeypatch.chdir(tmp_path)
    assert main(["rag", "ask", "anything", "--config", "rag.yaml"]) == 2
    err = capsys.readouterr().err
    assert err == "error: rag.chunk_size: expected an integer, got 'abc'\n"


def test_every_field_is_documented_for_config_show():
    rows = describe(RagConfig)
    assert [key for key, *_ in rows] == [f.name for f in dataclasses.fields(RagConfig)]
    undocumented = [key for key, _, _, note in rows if not note]
    assert not undocumented
