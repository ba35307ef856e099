"""Tiny text helpers shared by BM25, the answerer and the metrics: one tokenizer everywhere."""

from __future__ import annotations

import re

WORD = re.compile(r"[a-z0-9]+")
_STOPWORDS = """
    a an and are as at be been being but by can could did do does doing for from had has
    have how i if in into is it its itself me my of on or our so than that the their them
    then there these they this those to too up us was we were what when where which while
    who whom why will with would you your yours s t should shall may might must am get gets
    got about also any all each some such no not only own same just very use used uses using
    much many
"""
STOPWORDS = frozenset(_STOPWORDS.split())


def stem(word: str) -> str:
    """A deliberately light stemmer: plural and common verb endings, so 'layers' ~ 'layer'."""
    for suffix, keep in (
        ("ies", "y"),
        ("sses", "ss"),
        ("ing", ""),
        ("ed", ""),
        ("es", ""),
        ("s", ""),
    ):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3 and not word.endswith("ss"):
            return word[: -len(suffix)] + keep
    return word


def tokens(text: str) -> list[str]:
    """Lower-cased, stemmed content words: the vocabulary BM25 and overlap checks use."""
    return [stem(w) for w in WORD.findall(text.lower()) if w not in STOPWORDS]


def normalize(text: str) -> str:
    """For answer matching: lower case, punctuation to spaces, whitespace collapsed."""
    return " ".join(WORD.findall(text.lower()))
