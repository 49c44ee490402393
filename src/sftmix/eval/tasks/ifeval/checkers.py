"""Checkers for verifiable instructions, one class per IFEval instruction id.

Each checker is a dataclass whose fields are the instruction's ``kwargs`` as
IFEval's ``input_data.jsonl`` writes them (``{"relation": "at least",
"num_words": 300}``), and whose :meth:`Checker.check` says whether a response
follows the instruction. The semantics are IFEval's, verdict for verdict
(``less than`` is strict, ``at least`` inclusive; keywords, forbidden words,
section splitters and postscript markers are case-insensitive regular
expressions as IFEval writes them; languages by ``langdetect``; sentences and
word tokens by NLTK's Punkt), written here from the published definitions and
checked against lm-evaluation-harness's checkers in the test suite. Where
those are random (a ``letter_frequency`` letter that is not a-z), sftmix is
deterministic; docs/evaluation.md lists every difference. :func:`make_checker`
builds one from an id and kwargs and turns bad kwargs into a DataError.
"""

from __future__ import annotations

import dataclasses
import json
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

from sftmix.errors import DataError
from sftmix.eval.tasks.ifeval.language import detect_language
from sftmix.eval.tasks.ifeval.text import (
    RELATIONS,
    compare,
    count_sentences,
    count_words,
    word_tokens,
)
from sftmix.registry import Registry


class Checker(ABC):
    id: ClassVar[str]

    @abstractmethod
    def check(self, response: str) -> bool:
        """Whether ``response`` follows the instruction."""

    def kwargs(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]


CHECKERS: Registry[type[Checker]] = Registry("instruction")


def register(cls: type[Checker]) -> type[Checker]:
    CHECKERS.add(cls.id, cls)
    return cls


def make_checker(instruction_id: str, kwargs: dict[str, Any] | None) -> Checker:
    """A checker for one instruction; unknown ids and bad kwargs raise DataError."""
    cls = CHECKERS.get(instruction_id)
    given = {k: v for k, v in (kwargs or {}).items() if v is not None}
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(given) - set(fields))
    if unknown:
        raise DataError(f"instruction '{instruction_id}': unknown kwargs {unknown}; "
                        f"expected {sorted(fields)}")
    try:
        return cls(**given)
    except (TypeError, ValueError) as e:
        raise DataError(f"instruction '{instruction_id}' with kwargs {given}: {e}; "
                        f"expected kwargs {sorted(fields)}") from None


def _relation(relation: str) -> None:
    if relation not in RELATIONS:
        raise ValueError(f"relation {relation!r} is not one of {RELATIONS}")


def _pattern(text: str) -> str:
    """``text`` as the regular expression IFEval makes of it; escaped if it is not one.

    IFEval searches for keywords as patterns (a keyword is plain words in its
    data, where the two readings agree); one that does not compile would stop
    the reference with an error, and is matched literally here instead.
    """
    try:
        re.compile(text)
    except re.error:
        return re.escape(text)
    return text


# --- keywords -----------------------------------------------------------------

@register
@dataclass
class KeywordsExistence(Checker):
    id = "keywords:existence"
    keywords: list[str]

    def check(self, response: str) -> bool:
        return all(re.search(_pattern(k), response, re.IGNORECASE) for k in self.keywords)


@register
@dataclass
class KeywordFrequency(Checker):
    id = "keywords:frequency"
    keyword: str
    frequency: int
    relation: str

    def __post_init__(self) -> None:
        _relation(self.relation)

    def check(self, response: str) -> bool:
        found = len(re.findall(_pattern(self.keyword), response, re.IGNORECASE))
        return compare(found, self.relation, self.frequency)


@register
@dataclass
class ForbiddenWords(Checker):
    id = "keywords:forbidden_words"
    forbidden_words: list[str]

    def check(self, response: str) -> bool:
        return not any(re.search(rf"\b{_pattern(w)}\b", response, re.IGNORECASE)
                       for w in self.forbidden_words)


@register
@dataclass
class LetterFrequency(Checker):
    """Occurrences of one character, case-insensitively.

    IFEval replaces a ``letter`` outside a-z (its data asks for ``#`` and ``!``)
    by a letter drawn at random each time the checker is built, so its verdict
    on those prompts is not reproducible. sftmix counts the character the
    prompt names.
    """

    id = "keywords:letter_frequency"
    letter: str
    let_frequency: int
    let_relation: str

    def __post_init__(self) -> None:
        _relation(self.let_relation)
        if len(self.letter) != 1:
            raise ValueError(f"letter {self.letter!r} is not a single character")

    def check(self, response: str) -> bool:
        found = response.lower().count(self.letter.lower())
        return compare(found, self.let_relation, self.let_frequency)


# --- language and case --------------------------------------------------------

@register
@dataclass
class ResponseLanguage(Checker):
    """langdetect, seeded (see ``language.py``); text it finds nothing in passes, as in IFEval."""

    id = "language:response_language"
    language: str

    def check(self, response: str) -> bool:
        found = detect_language(response)
        return found is None or found == self.language


@register
@dataclass
class EnglishLowercase(Checker):
    id = "change_case:english_lowercase"

    def check(self, response: str) -> bool:
        return response.islower() and detect_language(response) in ("en", None)


@register
@dataclass
class EnglishCapital(Checker):
    id = "change_case:english_capital"

    def check(self, response: str) -> bool:
        return response.isupper() and detect_language(response) in ("en", None)


@register
@dataclass
class CapitalWordFrequency(Checker):
    """Words in capitals among ``nltk.word_tokenize``'s tokens (so "U.S." and "NASA's" count)."""

    id = "change_case:capital_word_frequency"
    capital_frequency: int
    capital_relation: str

    def __post_init__(self) -> None:
        _relation(self.capital_relation)

    def check(self, response: str) -> bool:
        capitals = sum(1 for w in word_tokens(response) if w.isupper())
        return compare(capitals, self.capital_relation, self.capital_frequency)


# --- length -------------------------------------------------------------------

@register
@dataclass
class NumberWords(Checker):
    id = "length_constraints:number_words"
    num_words: int
    relation: str

    def __post_init__(self) -> None:
        _relation(self.relation)

    def check(self, response: str) -> bool:
        return compare(count_words(response), self.relation, self.num_words)


@register
@dataclass
class NumberSentences(Checker):
    id = "length_constraints:number_sentences"
    num_sentences: int
    relation: str

    def __post_init__(self) -> None:
        _relation(self.relation)

    def check(self, response: str) -> bool:
        return compare(count_sentences(response), self.relation, self.num_sentences)


def star_paragraphs(response: str) -> list[str] | None:
    """Paragraphs separated by ``***``; None when an empty one sits between two others."""
    parts = re.split(r"\s?\*\*\*\s?", response)
    for i, p in enumerate(parts):
        if not p.strip() and 0 < i < len(parts) - 1:
            return None
    return [p for p in parts if p.strip()]


@register
@dataclass
class NumberParagraphs(Checker):
    id = "length_constraints:number_paragraphs"
    num_paragraphs: int

    def check(self, response: str) -> bool:
        paragraphs = star_paragraphs(response)
        return paragraphs is not None and len(paragraphs) == self.num_paragraphs


@register
@dataclass
class NthParagraphFirstWord(Checker):
    """Exactly ``num_paragraphs`` non-empty paragraphs (split at ``\\n\\n``); the nth starts with the word.

    As in IFEval, the nth piece of the split is looked at, counting empty
    pieces (three newlines in a row make one), and an empty nth piece fails.
    The first word is the piece's first whitespace-separated token without
    leading quotes, up to the first ``. , ? ! ' "``, lower-cased.
    """

    id = "length_constraints:nth_paragraph_first_word"
    num_paragraphs: int
    nth_paragraph: int
    first_word: str

    def __post_init__(self) -> None:
        if not 1 <= self.nth_paragraph <= self.num_paragraphs:
            raise ValueError(f"nth_paragraph {self.nth_paragraph} is not between 1 and "
                             f"num_paragraphs ({self.num_paragraphs})")

    def check(self, response: str) -> bool:
        pieces = re.split(r"\n\n", response)
        count = sum(1 for p in pieces if p.strip())
        if self.nth_paragraph > count:
            return False
        paragraph = pieces[self.nth_paragraph - 1].strip()
        if not paragraph:
            return False
        token = paragraph.split()[0].strip().lstrip("'").lstrip('"')
        first = re.split(r"[.,?!'\"]", token, maxsplit=1)[0].lower()
        return count == self.num_paragraphs and first == self.first_word.lower()


# --- detectable content and format --------------------------------------------

@register
@dataclass
class NumberPlaceholders(Checker):
    id = "detectable_content:number_placeholders"
    num_placeholders: int

    def check(self, response: str) -> bool:
        return len(re.findall(r"\[.*?\]", response)) >= self.num_placeholders


@register
@dataclass
class Postscript(Checker):
    id = "detectable_content:postscript"
    postscript_marker: str

    def check(self, response: str) -> bool:
        # IFEval's two spelled-out markers, compared exactly; any other marker is
        # a lower-cased pattern (so the dots of "P.S" match any character).
        if self.postscript_marker == "P.P.S":
            pattern = r"\s*p\.\s?p\.\s?s.*$"
        elif self.postscript_marker == "P.S.":
            pattern = r"\s*p\.\s?s\..*$"
        else:
            pattern = r"\s*" + _pattern(self.postscript_marker.lower()) + r".*$"
        return bool(re.search(pattern, response.lower(), re.MULTILINE))


@register
@dataclass
class NumberBulletLists(Checker):
    """Exactly ``num_bullets`` markdown bullets (``* item`` or ``- item``)."""

    id = "detectable_format:number_bullet_lists"
    num_bullets: int

    def check(self, response: str) -> bool:
        stars = re.findall(r"^\s*\*[^\*].*$", response, re.MULTILINE)
        dashes = re.findall(r"^\s*-.*$", response, re.MULTILINE)
        return len(stars) + len(dashes) == self.num_bullets


@register
@dataclass
class ConstrainedResponse(Checker):
    id = "detectable_format:constrained_response"
    OPTIONS: ClassVar[tuple[str, ...]] = ("My answer is yes.", "My answer is no.",
                                          "My answer is maybe.")

    def check(self, response: str) -> bool:
        return any(option in response.strip() for option in self.OPTIONS)


@register
@dataclass
class NumberHighlightedSections(Checker):
    """At least ``num_highlights`` non-empty ``*highlighted*`` (or ``**bold**``) spans."""

    id = "detectable_format:number_highlighted_sections"
    num_highlights: int

    def check(self, response: str) -> bool:
        spans = re.findall(r"\*[^\n\*]*\*", response) + re.findall(r"\*\*[^\n\*]*\*\*", response)
        return sum(1 for s in spans if s.strip("*").strip()) >= self.num_highlights


@register
@dataclass
class MultipleSections(Checker):
    """At least ``num_sections`` sections, each starting ``{section_spliter} N``."""

    id = "detectable_format:multiple_sections"
    section_spliter: str
    num_sections: int

    def check(self, response: str) -> bool:
        pattern = r"\s?" + _pattern(self.section_spliter) + r"\s?\d+\s?"
        return len(re.split(pattern, response)) - 1 >= self.num_sections


@register
@dataclass
class JsonFormat(Checker):
    """The whole response is JSON (a surrounding markdown code fence is allowed)."""

    id = "detectable_format:json_format"

    def check(self, response: str) -> bool:
        value = response.strip()
        for fence in ("```json", "```Json", "```JSON", "```"):
            value = value.removeprefix(fence)
        value = value.removesuffix("```").strip()
        try:
            json.loads(value)
        except ValueError:
            return False
        return True


@register
@dataclass
class Title(Checker):
    id = "detectable_format:title"

    def check(self, response: str) -> bool:
        return any(t.lstrip("<").rstrip(">").strip() for t in re.findall(r"<<[^\n]+>>", response))


# --- start/end, punctuation, combinations -------------------------------------

@register
@dataclass
class Quotation(Checker):
    id = "startend:quotation"

    def check(self, response: str) -> bool:
        value = response.strip()
        return len(value) > 1 and value[0] == '"' and value[-1] == '"'


@register
@dataclass
class EndChecker(Checker):
    id = "startend:end_checker"
    end_phrase: str

    def check(self, response: str) -> bool:
        return response.strip().strip('"').lower().endswith(self.end_phrase.strip().lower())


@register
@dataclass
class NoComma(Checker):
    id = "punctuation:no_comma"

    def check(self, response: str) -> bool:
        return "," not in response


@register
@dataclass
class RepeatPrompt(Checker):
    id = "combination:repeat_prompt"
    prompt_to_repeat: str

    def check(self, response: str) -> bool:
        return response.strip().lower().startswith(self.prompt_to_repeat.strip().lower())


@register
@dataclass
class TwoResponses(Checker):
    """Two different responses separated by ``******``."""

    id = "combination:two_responses"

    def check(self, response: str) -> bool:
        parts = response.split("******")
        kept = []
        for i, part in enumerate(parts):
            if not part.strip():
                if 0 < i < len(parts) - 1:
                    return False
            else:
                kept.append(part.strip())
        return len(kept) == 2 and kept[0] != kept[1]
