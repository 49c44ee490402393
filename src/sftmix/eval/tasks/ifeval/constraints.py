"""What the prompt generator can ask for: per instruction, its kwargs, its wording, its clashes.

Every :class:`ConstraintSpec` samples kwargs for an IFEval instruction id from
value ranges that depend on the split: the ``test`` ranges do not overlap the
``train`` ones (more words, more paragraphs, other keywords and phrases), so
held-out items ask for things no training item asked for. ``phrase`` words the
instruction for the prompt, in one of a few phrasings.

``language:response_language`` is not generated: writing a correct reference
reply in another language needs text sftmix does not have offline.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

SPLITS = ("train", "test")

# Disjoint vocabularies per split.
KEYWORDS = {
    "train": ("balance", "journey", "harvest", "signal", "lantern", "meadow", "compass", "ribbon",
              "orbit", "canvas", "anchor", "timber", "pebble", "beacon"),
    "test": ("glacier", "velvet", "puzzle", "falcon", "harbor", "quartz", "thunder", "saddle",
             "violet", "summit", "marble", "cobalt"),
}
FORBIDDEN = {
    "train": ("basically", "literally", "awesome", "stuff", "totally", "nice", "huge"),
    "test": ("really", "actually", "amazing", "thing", "super", "cool", "tiny"),
}
END_PHRASES = {
    "train": ("Is there anything else I can help with?", "Let me know if you have questions.",
              "That is all for now.", "Thanks for reading."),
    "test": ("Any other questions?", "Hope this helps.", "Until next time."),
}
LETTERS = {"train": ("e", "a", "o", "t", "n", "s"), "test": ("i", "r", "l", "u", "h")}
RARE_LETTERS = {"train": ("q", "x"), "test": ("z", "j")}
SPLITTERS = {"train": ("SECTION", "Section"), "test": ("PARAGRAPH", "Part")}
POSTSCRIPT = {"train": ("P.S.",), "test": ("P.P.S",)}

# name -> {split: (low, high)} for integer kwargs (inclusive); test ranges lie above train.
RANGES: dict[str, dict[str, tuple[int, int]]] = {
    "words_at_least": {"train": (40, 150), "test": (160, 260)},
    "words_less_than": {"train": (150, 250), "test": (260, 400)},
    "sentences_at_least": {"train": (3, 8), "test": (9, 14)},
    "sentences_less_than": {"train": (8, 12), "test": (13, 18)},
    "paragraphs": {"train": (2, 4), "test": (5, 6)},
    "placeholders": {"train": (1, 3), "test": (4, 6)},
    "bullets": {"train": (2, 4), "test": (5, 7)},
    "highlights": {"train": (1, 3), "test": (4, 5)},
    "sections": {"train": (2, 3), "test": (4, 5)},
    "frequency": {"train": (2, 4), "test": (5, 7)},
    "letters_at_least": {"train": (5, 15), "test": (16, 25)},
    "rare_less_than": {"train": (2, 3), "test": (4, 5)},
    "capitals_at_least": {"train": (2, 5), "test": (6, 9)},
    "capitals_less_than": {"train": (4, 8), "test": (9, 12)},
}


def _int(rng: random.Random, split: str, name: str) -> int:
    low, high = RANGES[name][split]
    return rng.randint(low, high)


@dataclass(frozen=True)
class ConstraintSpec:
    id: str
    sample: Callable[[random.Random, str], dict[str, Any]]
    phrases: tuple[str, ...]
    kinds: frozenset[str] = frozenset({"prose"})  # families it makes sense for

    def phrase(self, kwargs: dict[str, Any], rng: random.Random) -> str:
        values = {k: (" and ".join(f'"{w}"' for w in v) if isinstance(v, list) else v)
                  for k, v in kwargs.items()}
        return rng.choice(self.phrases).format(**values)


def _relation(rng: random.Random, split: str, key: str, at_least: str, less_than: str,
              rel_key: str = "relation") -> dict[str, Any]:
    if rng.random() < 0.5:
        return {rel_key: "at least", key: _int(rng, split, at_least)}
    return {rel_key: "less than", key: _int(rng, split, less_than)}


def _letters(rng: random.Random, split: str) -> dict[str, Any]:
    if rng.random() < 0.7:
        return {"letter": rng.choice(LETTERS[split]), "let_relation": "at least",
                "let_frequency": _int(rng, split, "letters_at_least")}
    return {"letter": rng.choice(RARE_LETTERS[split]), "let_relation": "less than",
            "let_frequency": _int(rng, split, "rare_less_than")}


def _nth(rng: random.Random, split: str) -> dict[str, Any]:
    n = _int(rng, split, "paragraphs")
    return {"num_paragraphs": n, "nth_paragraph": rng.randint(1, n),
            "first_word": rng.choice(KEYWORDS[split])}


PROSE_AND_YESNO = frozenset({"prose", "yesno"})

SPECS: dict[str, ConstraintSpec] = {s.id: s for s in (
    ConstraintSpec("keywords:existence",
                   lambda r, s: {"keywords": r.sample(KEYWORDS[s], r.randint(1, 2))},
                   ("Include the keywords {keywords} in the response.",
                    "Make sure to use the words {keywords}."), PROSE_AND_YESNO),
    ConstraintSpec("keywords:frequency",
                   lambda r, s: {"keyword": r.choice(KEYWORDS[s]), "relation": "at least",
                                 "frequency": _int(r, s, "frequency")},
                   ("The word \"{keyword}\" should appear {relation} {frequency} times.",
                    "Use the word \"{keyword}\" {relation} {frequency} times.")),
    ConstraintSpec("keywords:forbidden_words",
                   lambda r, s: {"forbidden_words": r.sample(FORBIDDEN[s], r.randint(1, 3))},
                   ("Do not include the words {forbidden_words} in the response.",
                    "Avoid the words {forbidden_words}."), PROSE_AND_YESNO),
    ConstraintSpec("keywords:letter_frequency", _letters,
                   ("In your response the letter {letter} should appear {let_relation} "
                    "{let_frequency} times.",
                    "Use the letter \"{letter}\" {let_relation} {let_frequency} times.")),
    ConstraintSpec("length_constraints:number_words",
                   lambda r, s: _relation(r, s, "num_words", "words_at_least", "words_less_than"),
                   ("Answer with {relation} {num_words} words.",
                    "Your response should contain {relation} {num_words} words.")),
    ConstraintSpec("length_constraints:number_sentences",
                   lambda r, s: _relation(r, s, "num_sentences", "sentences_at_least",
                                          "sentences_less_than"),
                   ("Your response should contain {relation} {num_sentences} sentences.",
                    "Write {relation} {num_sentences} sentences.")),
    ConstraintSpec("length_constraints:number_paragraphs",
                   lambda r, s: {"num_paragraphs": _int(r, s, "paragraphs")},
                   ("There should be {num_paragraphs} paragraphs. Paragraphs are separated "
                    "with the markdown divider: ***",
                    "Write exactly {num_paragraphs} paragraphs separated by ***.")),
    ConstraintSpec("length_constraints:nth_paragraph_first_word", _nth,
                   ("There should be {num_paragraphs} paragraphs separated by two new lines. "
                    "Paragraph {nth_paragraph} must start with the word {first_word}.",
                    "Write {num_paragraphs} paragraphs separated by blank lines; start "
                    "paragraph {nth_paragraph} with the word \"{first_word}\".")),
    ConstraintSpec("detectable_content:number_placeholders",
                   lambda r, s: {"num_placeholders": _int(r, s, "placeholders")},
                   ("The response must contain at least {num_placeholders} placeholders "
                    "represented by square brackets such as [address].",
                    "Include at least {num_placeholders} placeholders in square brackets "
                    "like [name].")),
    ConstraintSpec("detectable_content:postscript",
                   lambda r, s: {"postscript_marker": r.choice(POSTSCRIPT[s])},
                   ("At the end of your response please add a postscript starting with "
                    "{postscript_marker}",
                    "End with a postscript that starts with {postscript_marker}"),
                   PROSE_AND_YESNO),
    ConstraintSpec("detectable_format:number_bullet_lists",
                   lambda r, s: {"num_bullets": _int(r, s, "bullets")},
                   ("Your answer must contain exactly {num_bullets} bullet points in "
                    "markdown format such as:\n* This is a point.",
                    "Use exactly {num_bullets} markdown bullet points.")),
    ConstraintSpec("detectable_format:number_highlighted_sections",
                   lambda r, s: {"num_highlights": _int(r, s, "highlights")},
                   ("Highlight at least {num_highlights} sections with markdown, i.e. "
                    "*highlighted section*.",
                    "Highlight at least {num_highlights} parts of your answer like "
                    "*this*.")),
    ConstraintSpec("detectable_format:multiple_sections",
                   lambda r, s: {"section_spliter": r.choice(SPLITTERS[s]),
                                 "num_sections": _int(r, s, "sections")},
                   ("Your response must have {num_sections} sections. Mark the beginning "
                    "of each section with {section_spliter} X.",
                    "Organise the answer in {num_sections} parts and start each with "
                    "{section_spliter} X where X is its number.")),
    ConstraintSpec("detectable_format:json_format", lambda r, s: {},
                   ("Wrap your entire output in JSON format.",
                    "Your whole answer must be valid JSON.")),
    ConstraintSpec("detectable_format:title", lambda r, s: {},
                   ("Your answer must contain a title wrapped in double angular brackets "
                    "such as <<poem of joy>>.",
                    "Give your answer a title in double angular brackets like <<title>>.")),
    ConstraintSpec("detectable_format:constrained_response", lambda r, s: {},
                   ("Answer with one of the following options: My answer is yes. My answer "
                    "is no. My answer is maybe.",), frozenset({"yesno"})),
    ConstraintSpec("change_case:english_lowercase", lambda r, s: {},
                   ("Your entire response should be in English and in all lowercase "
                    "letters. No capital letters are allowed.",
                    "Write everything in lowercase English letters only.")),
    ConstraintSpec("change_case:english_capital", lambda r, s: {},
                   ("Your entire response should be in English and in all capital letters.",
                    "Respond only in English capital letters.")),
    ConstraintSpec("change_case:capital_word_frequency",
                   lambda r, s: _relation(r, s, "capital_frequency", "capitals_at_least",
                                          "capitals_less_than", rel_key="capital_relation"),
                   ("Words with all capital letters should appear {capital_relation} "
                    "{capital_frequency} times.",
                    "Use {capital_relation} {capital_frequency} words written in all "
                    "capital letters.")),
    ConstraintSpec("startend:quotation", lambda r, s: {},
                   ("Wrap your entire response with double quotation marks.",),
                   PROSE_AND_YESNO),
    ConstraintSpec("startend:end_checker",
                   lambda r, s: {"end_phrase": r.choice(END_PHRASES[s])},
                   ("Finish your response with this exact phrase: {end_phrase} No other "
                    "words should follow this phrase.",
                    "End your answer with the exact phrase \"{end_phrase}\"."),
                   PROSE_AND_YESNO),
    ConstraintSpec("punctuation:no_comma", lambda r, s: {},
                   ("Do not use any commas in your response.",
                    "Refrain from using commas."), PROSE_AND_YESNO),
    ConstraintSpec("combination:two_responses", lambda r, s: {},
                   ("Give two different responses. Responses and only responses should be "
                    "separated by 6 asterisk symbols: ******.",)),
    ConstraintSpec("combination:repeat_prompt", lambda r, s: {},
                   ("First repeat the request word for word without change, then give your "
                    "answer (do not say anything before repeating the request; the request "
                    "to repeat does not include this sentence).",)),
)}

# Pairs that cannot both hold, or whose reference reply this generator cannot write.
_CLASHES = {
    "change_case:english_lowercase": {"change_case:english_capital",
                                      "change_case:capital_word_frequency",
                                      "detectable_format:multiple_sections"},
    "change_case:english_capital": {"change_case:capital_word_frequency",
                                    "detectable_format:multiple_sections",
                                    "detectable_format:json_format"},
    "length_constraints:number_paragraphs": {"length_constraints:nth_paragraph_first_word",
                                             "detectable_format:multiple_sections"},
    "length_constraints:nth_paragraph_first_word": {"detectable_format:multiple_sections",
                                                    "combination:repeat_prompt"},
    "combination:repeat_prompt": {"startend:quotation"},
    "length_constraints:number_words": {"length_constraints:number_sentences"},
    "combination:two_responses": {"length_constraints:number_paragraphs",
                                  "length_constraints:nth_paragraph_first_word",
                                  "detectable_format:number_bullet_lists",
                                  "length_constraints:number_sentences",
                                  "length_constraints:number_words",
                                  "keywords:letter_frequency",
                                  "change_case:capital_word_frequency"},
    "detectable_format:json_format": {i for i in SPECS if i not in {
        "keywords:existence", "keywords:forbidden_words", "keywords:frequency",
        "change_case:english_lowercase"}},
}


def compatible(a: str, b: str) -> bool:
    return a != b and b not in _CLASHES.get(a, set()) and a not in _CLASHES.get(b, set())
