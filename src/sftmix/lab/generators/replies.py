"""Verifiable instructions and replies built to follow them, for the general generator.

Instruction ids and kwargs are IFEval's, so IFEval's checkers (and
``sftmix.eval.tasks.ifeval``) score the lab's prompts unchanged. A reply is built in
a fixed order because later steps must not undo earlier ones: choose topic
sentences (content instructions), shape them (bullets or ``***`` paragraphs),
decorate (title, postscript, end phrase), then transform the whole text (case,
commas, quotation marks). Pairs that cannot both hold, or that the order above
would break, are in :data:`CONFLICTS` and never drawn together.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from sftmix.eval.tasks.ifeval.language import detect_language


@dataclass(frozen=True)
class Topic:
    name: str
    words: tuple[str, str, str, str]  # nouns the topic's sentences use
    adjectives: tuple[str, str]


SENTENCES = (
    "{Topic} is {adj0} for many people.",
    "It often involves {w0} and {w1}.",
    "A good first step is to learn about {w2}.",
    "Most beginners find that {w3} matter a lot.",
    "With some practice, {topic} becomes {adj1}.",
    "You can enjoy {topic} alone or with friends.",
    "Patience helps more than talent here.",
    "In short, {topic} is worth trying.",
)

KEYWORDS = ("river", "music", "window", "garden", "winter", "coffee", "market", "bridge",
            "island", "candle", "morning", "letter")
END_PHRASES = ("Is there anything else I can help with?", "Let me know if you have more questions.",
               "Have a nice day.", "Thank you for reading.", "That is all for now.")
POSTSCRIPTS = ("I hope this helps you get started.", "Feel free to ask me more about it.")
PLACEHOLDERS = ("[name]", "[place]", "[date]")
WORD_LIMITS = (20, 30, 40)

# id -> instruction text; kwargs fields in braces.
INSTRUCTION_TEXT = {
    "punctuation:no_comma": "Do not use any commas in your response.",
    "change_case:english_lowercase": (
        "Your entire response should be in English, and in all lowercase letters."),
    "change_case:english_capital": (
        "Your entire response should be in English, and in all capital letters."),
    "startend:end_checker": (
        "Finish your response with this exact phrase: {end_phrase} "
        "No other words should follow this phrase."),
    "detectable_content:postscript": (
        "At the end of your response, please explicitly add a postscript starting with "
        "{postscript_marker}"),
    "detectable_format:title": (
        "Your answer must contain a title, wrapped in double angular brackets, such as <<poem of joy>>."),
    "detectable_format:number_bullet_lists": (
        "Your answer must contain exactly {num_bullets} bullet points. Use markdown bullet points "
        "such as:\n* This is a point."),
    "startend:quotation": "Wrap your entire response with double quotation marks.",
    "keywords:existence": "Include the keywords {k0} and {k1} in the response.",
    "keywords:forbidden_words": "Do not include the word {w} in your response.",
    "length_constraints:number_paragraphs": (
        "There should be {num_paragraphs} paragraphs. Paragraphs are separated with the markdown "
        "divider: ***"),
    "detectable_content:number_placeholders": (
        "The response must contain at least {num_placeholders} placeholders represented by square "
        "brackets, such as [address]."),
    "length_constraints:number_words": "Answer with {relation} {num_words} words.",
}
INSTRUCTIONS = tuple(INSTRUCTION_TEXT)

CONFLICTS = frozenset(frozenset(p) for p in (
    ("change_case:english_lowercase", "change_case:english_capital"),
    ("detectable_format:number_bullet_lists", "length_constraints:number_paragraphs"),
    # A leading quotation mark would hide the first bullet from the bullet count.
    ("detectable_format:number_bullet_lists", "startend:quotation"),
    ("detectable_content:postscript", "startend:end_checker"),
    # Bullets fix the sentence count, which may contradict a word limit.
    ("detectable_format:number_bullet_lists", "length_constraints:number_words"),
    ("length_constraints:number_paragraphs", "length_constraints:number_words"),
))


def topic_sentences(topic: Topic) -> list[str]:
    fields = {"topic": topic.name, "Topic": topic.name.capitalize(),
              "adj0": topic.adjectives[0], "adj1": topic.adjectives[1],
              **{f"w{i}": w for i, w in enumerate(topic.words)}}
    return [s.format(**fields) for s in SENTENCES]


def instruction_kwargs(rng: random.Random, instruction: str, topic: Topic) -> dict[str, Any]:
    """IFEval kwargs for one instruction (only the fields that instruction uses)."""
    if instruction == "startend:end_checker":
        return {"end_phrase": rng.choice(END_PHRASES)}
    if instruction == "detectable_content:postscript":
        return {"postscript_marker": "P.S."}
    if instruction == "detectable_format:number_bullet_lists":
        return {"num_bullets": rng.randint(2, 4)}
    if instruction == "keywords:existence":
        return {"keywords": rng.sample(KEYWORDS, 2)}
    if instruction == "keywords:forbidden_words":
        return {"forbidden_words": [rng.choice(topic.words)]}
    if instruction == "length_constraints:number_paragraphs":
        return {"num_paragraphs": rng.randint(2, 3)}
    if instruction == "detectable_content:number_placeholders":
        return {"num_placeholders": rng.randint(1, 3)}
    if instruction == "length_constraints:number_words":
        return {"relation": rng.choice(("less than", "at least")), "num_words": rng.choice(WORD_LIMITS)}
    return {}


def instruction_text(instruction: str, kwargs: dict[str, Any]) -> str:
    fields = dict(kwargs)
    if "keywords" in kwargs:
        fields.update(k0=kwargs["keywords"][0], k1=kwargs["keywords"][1])
    if "forbidden_words" in kwargs:
        fields["w"] = kwargs["forbidden_words"][0]
    return INSTRUCTION_TEXT[instruction].format(**fields)


def _word_count(text: str) -> int:
    # The checkers' convention: a word is a run of word characters.
    return len(re.findall(r"\w+", text))


def _counts(rng: random.Random, pool_size: int, spec: dict[str, Any], low: int, high: int) -> list[int]:
    """Sentence counts to try, the usual reply length first."""
    if "detectable_format:number_bullet_lists" in spec:
        return [int(spec["detectable_format:number_bullet_lists"]["num_bullets"])]
    if "length_constraints:number_paragraphs" in spec:
        low = max(low, int(spec["length_constraints:number_paragraphs"]["num_paragraphs"]))
        high = max(high, low)
    counts = list(range(low, pool_size + 1)) if "length_constraints:number_words" not in spec \
        else list(range(1, pool_size + 1))
    rng.shuffle(counts)
    counts.sort(key=lambda c: not low <= c <= high)
    return counts


def follows_word_limit(text: str, spec: dict[str, Any]) -> bool:
    words = spec.get("length_constraints:number_words")
    if words is None:
        return True
    n, limit = _word_count(text), int(words["num_words"])
    # Keep clear of the limit: a reply that just scrapes by teaches nothing about length.
    return n + 5 <= limit if words["relation"] == "less than" else n >= limit + 3


def reads_as_english(text: str, spec: dict[str, Any]) -> bool:
    """Whether the English test of "all capitals" passes: IFEval asks langdetect, which takes
    some all-capital English for German. (Lower-case English is recognised; not asked, since
    each question costs milliseconds.)"""
    if "change_case:english_capital" not in spec:
        return True
    return detect_language(text) in ("en", None)


def build_reply(rng: random.Random, topic: Topic, spec: dict[str, dict[str, Any]],
                low: int, high: int) -> str:
    """A reply about ``topic`` that follows every instruction in ``spec`` (id -> kwargs).

    Only a word limit can make this impossible for a topic (e.g. "less than 20
    words" with a title and an end phrase); then the shortest reply is returned
    and the caller must check :func:`follows_word_limit` and draw again.
    """
    pool = topic_sentences(topic)
    if "keywords:forbidden_words" in spec:
        banned = [w.lower() for w in spec["keywords:forbidden_words"]["forbidden_words"]]
        pool = [s for s in pool if not any(re.search(rf"\b{re.escape(w)}\b", s, re.I) for w in banned)]
    extra = []
    if "keywords:existence" in spec:
        k0, k1 = spec["keywords:existence"]["keywords"]
        extra.append(f"It also brings to mind {k0} and {k1}.")
    if "detectable_content:number_placeholders" in spec:
        n = int(spec["detectable_content:number_placeholders"]["num_placeholders"])
        extra.append("You can ask " + " at ".join(PLACEHOLDERS[:n]) + " about it.")
    text = ""
    for count in _counts(rng, len(pool), spec, low, high):
        chosen = [pool[i] for i in sorted(rng.sample(range(len(pool)), min(count, len(pool))))]
        text = _render(rng, topic, spec, chosen, extra)
        if follows_word_limit(text, spec) and reads_as_english(text, spec):
            break
    return text


def _render(rng: random.Random, topic: Topic, spec: dict[str, dict[str, Any]],
            chosen: list[str], extra: list[str]) -> str:
    sentences = chosen + extra
    if "detectable_format:number_bullet_lists" in spec:
        # Extra sentences join the last bullet so the bullet count stays exact.
        bullets = [*chosen[:-1], " ".join(chosen[-1:] + extra)]
        text = "\n".join(f"* {b}" for b in bullets)
    elif "length_constraints:number_paragraphs" in spec:
        parts = int(spec["length_constraints:number_paragraphs"]["num_paragraphs"])
        # Split as evenly as possible; every paragraph gets at least one sentence.
        cuts = [round(i * len(sentences) / parts) for i in range(parts + 1)]
        text = "\n\n***\n\n".join(" ".join(sentences[a:b]) for a, b in pairwise(cuts))
    else:
        text = " ".join(sentences)

    if "detectable_format:title" in spec:
        text = f"<<All About {topic.name.title()}>>\n\n{text}"
    if "detectable_content:postscript" in spec:
        text += f"\n\n{spec['detectable_content:postscript']['postscript_marker']} {rng.choice(POSTSCRIPTS)}"
    if "startend:end_checker" in spec:
        text += f"\n\n{spec['startend:end_checker']['end_phrase']}"
    if "change_case:english_lowercase" in spec:
        text = text.lower()
    if "change_case:english_capital" in spec:
        text = text.upper()
    if "punctuation:no_comma" in spec:
        text = text.replace(",", "")
    if "startend:quotation" in spec:
        text = f'"{text}"'
    return text
