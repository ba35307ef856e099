"""What kind of detail a question asks for, and whether a sentence contains one.

Retrieval scores alone cannot tell "What is the population of Oakmere?" (never given) from
"What is the population of Lindenhall?" (given): both retrieve a sentence about population.
So before answering, the answerer checks that the chosen sentence holds the kind of thing asked
for - a number, a date, an amount of money, a code or a name - and that named things in the
question (Oakmere, K3) belong to the sentence's document.
"""

from __future__ import annotations

import re

_NUMBER_WORDS = """
    one two three four five six seven eight nine ten eleven twelve twenty thirty forty fifty
    hundred thousand million billion dozen twice half
"""
NUMBER_WORDS = _NUMBER_WORDS.split()
_MONTHS = """
    january february march april may june july august september october november december
    jan feb mar apr jun jul aug sep sept oct nov dec
"""
MONTHS = _MONTHS.split()
_WEEKDAYS = """
    monday tuesday wednesday thursday friday saturday sunday weekday weekend
"""
WEEKDAYS = _WEEKDAYS.split()
CURRENCY = re.compile(
    r"[$€£¥]\s?\d|\d[\d,.]*\s?(euros?|eur|dollars?|usd|pounds?|gbp|cents?|yen|francs?)\b", re.I
)
YEAR = re.compile(r"\b(1[0-9]{3}|20[0-9]{2})\b")
DIGIT = re.compile(r"\d")
CODE = re.compile(r"\b(?=[A-Za-z0-9-]*\d)(?=[A-Za-z0-9-]*[A-Za-z])[A-Za-z0-9][A-Za-z0-9-]+\b")
NAME = re.compile(r"(?<=[a-z,;:] )([A-Z][a-z]+(?: [A-Z][a-z]+)+|[A-Z][a-z]{2,})")
_NUMBER_NOUNS = """
    number percentage percent rate size count version dimension dimensions port ratio speed
    weight length distance range duration population capacity height width depth temperature
    age total
"""
NUMBER_NOUNS = _NUMBER_NOUNS.split()
# Words that say what kind of answer is wanted rather than what it is about.
_QUESTION_WORDS = """
    many much long far often big large heavy fast deep tall high old kind type
"""
QUESTION_WORDS = frozenset(_QUESTION_WORDS.split())

_PATTERNS = [
    ("amount", re.compile(r"\b(cost|costs|price|prices|priced|fee|fees|pay|spend|expensive)\b")),
    (
        "date",
        re.compile(
            r"^\s*when\b|\b(what|which|in which|in what)\s+(year|date|day|month|century)\b"
            r"|\bday of the week\b"
        ),
    ),
    (
        "code",
        re.compile(r"\b(what|which)\b[\w\s']{0,30}\b(code|postcode|zip|serial|sku)\b(?!\s+\w+ing)"),
    ),
    ("version", re.compile(r"\b(what|which)\s+(\w+\s+)?version\b|\bversion of\b")),
    ("name", re.compile(r"^\s*who\b|\bwhat is the name\b|\bwhat is \w+ called\b|\bname of\b")),
    (
        "number",
        re.compile(
            r"\bhow (many|much|long|far|old|big|large|heavy|fast|often|deep|tall|high|wide)\b"
            r"|\b(" + "|".join(NUMBER_NOUNS) + r")\b"
        ),
    ),
]


def expected_type(question: str) -> str | None:
    """'number', 'date', 'amount', 'code', 'version', 'name' or None (any sentence may answer)."""
    q = question.lower()
    for kind, pattern in _PATTERNS:
        if pattern.search(q):
            return kind
    return None


def has_type(sentence: str, kind: str | None, question: str = "") -> bool:
    """Does the sentence contain a `kind` the question does not already contain itself?"""
    if kind is None:
        return True
    q_lower = question.lower()
    q_words = set(re.findall(r"[a-z0-9]+", q_lower))
    s_lower = sentence.lower()
    words = re.findall(r"[a-z0-9][a-z0-9,.]*[a-z0-9]|[a-z0-9]", s_lower)
    new_words = [w for w in words if w not in q_words]
    if kind == "number":
        return any(DIGIT.search(w) or w in NUMBER_WORDS for w in new_words)
    if kind == "date":
        return bool(
            any(m.group(0) not in q_words for m in YEAR.finditer(sentence))
            or any(w in MONTHS or w in WEEKDAYS for w in new_words)
            or re.search(r"\b\d{4}-\d{2}-\d{2}\b|\b\d{1,2}/\d{1,2}/\d{2,4}\b", sentence)
        )
    if kind == "version":  # 3.10, 1.15.1, v2: a bare number is not a version
        return bool(re.search(r"\b\d+\.\d+|\bv\d", sentence))
    if kind == "amount":
        return bool(CURRENCY.search(sentence)) or "free of charge" in s_lower
    if kind == "code":
        return any(m.group(0).lower() not in q_lower for m in CODE.finditer(sentence))
    if kind == "name":
        return any(m.group(0).lower() not in q_lower for m in NAME.finditer(sentence))
    return True


def question_entities(question: str) -> list[str]:
    """Named things in a question: capitalised words after the first, and letter+digit codes."""
    words = re.findall(r"[A-Za-z0-9][A-Za-z0-9_-]*", question)
    out = []
    for i, w in enumerate(words):
        code = bool(DIGIT.search(w)) and bool(re.search(r"[A-Za-z]", w))
        capital = i > 0 and w[0].isupper() and w != "I"
        if code or capital:
            out.append(w.lower())
    return out


MEASURE_NOUNS = frozenset(
    [*NUMBER_NOUNS, "code", "postcode", "zip", "serial", "name", "date", "year", "price", "cost"]
)


def focus_terms(question: str) -> list[str]:
    """The thing a question counts or measures: 'parameters' in 'how many parameters', 'dropout'
    in 'what dropout rate'. A sentence holding *a* number about something else is no answer."""
    from .text import STOPWORDS

    words = re.findall(r"[a-z0-9][a-z0-9_-]*", question.lower())
    out = []
    who = re.match(
        r"\s*(who|what)\s+(is|was|are|were)\s+(the\s+)?(name\s+of\s+the\s+)?(\w+)", question.lower()
    )
    if who and (who.group(1) == "who" or who.group(4)) and who.group(5) not in STOPWORDS:
        out.append(who.group(5))
    for i, w in enumerate(words):
        if (w == "many" and i > 0 and words[i - 1] == "how") or (
            w == "of" and i > 0 and words[i - 1] == "number"
        ):
            nxt = [x for x in words[i + 1 :] if x not in STOPWORDS]
            if nxt:
                out.append(nxt[0])
        elif w in MEASURE_NOUNS and i > 0:
            prev = words[i - 1]
            if prev not in STOPWORDS and prev not in QUESTION_WORDS and prev not in MEASURE_NOUNS:
                out.append(prev)
    return out
