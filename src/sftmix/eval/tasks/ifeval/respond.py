"""Writing a reference reply that follows a generated prompt's instructions.

The reply is assembled from parts (an opening, body sentences about the topic
spread over paragraphs, and the parts instructions call for: a title,
bullets, placeholders, highlighted spans, keyword sentences, a postscript, an
end phrase), then the whole-text transforms are applied (repeating the
prompt, case, quotation marks). Count constraints (words, sentences, letters)
are met by growing (or shrinking) the body one sentence at a time until
every checker passes. The body sentences contain no commas and no all-capital words, and
sentences holding a forbidden word or a letter that must stay rare are left
out, so that most instructions combine without interference; the generator
checks every reply and discards the rare item whose reply still fails.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Mapping, Sequence
from typing import Any

from sftmix.eval.tasks.ifeval.checkers import Checker, make_checker

BODY = (
    "{T} shapes the way many people plan their days.",
    "Most experts agree that {t} rewards patience and steady practice.",
    "It helps to start small and build on each success.",
    "People who study {t} often find new questions along the way.",
    "There is no single right approach to {t}.",
    "Small changes in routine can lead to lasting results.",
    "Curiosity is the best guide when exploring {t}.",
    "Many communities share what they learn about {t} with newcomers.",
    "Setting clear goals keeps the work focused and calm.",
    "Mistakes are part of learning and they point to the next step.",
    "A short daily review makes progress easy to see.",
    "Friends and mentors can offer helpful feedback.",
    "The history of {t} is richer than most people expect.",
    "Over time the effort adds up to real skill.",
    "Each season brings fresh chances to try something different.",
    "Clear notes help you remember what worked and what did not.",
    "Sharing results with others often sparks new ideas.",
    "The first weeks are the hardest but they pass quickly.",
    "Good tools matter less than regular attention.",
    "Anyone can begin with {t} at almost any age.",
)
TIPS = (
    "Start with a simple plan.", "Set aside time each week.", "Keep a short journal.",
    "Ask for feedback early.", "Celebrate small wins.", "Learn from people nearby.",
    "Review your progress monthly.", "Rest when you need to.",
)
KEYWORD_SENTENCES = (
    "Think of {k} as part of the picture.", "The idea of {k} matters here.",
    "A sense of {k} runs through all of this.", "Keep {k} in mind as you go.",
)
CAPITAL_WORDS = ("FOCUS", "PATIENCE", "CARE", "PRACTICE", "REST", "PLAN", "NOTE", "GOAL",
                 "TIME", "SKILL", "HOPE", "TRUST")
PLACEHOLDERS = ("name", "date", "address", "city", "phone number", "email", "company",
                "school")
FILLER = ("people", "season", "energy", "theory", "notes", "tools", "steady", "effort",
          "routine", "habits", "results", "history", "stories", "lunch", "hours", "rules")


def _allowed(sentence: str, constraints: Mapping[str, dict[str, Any]]) -> bool:
    forbidden = constraints.get("keywords:forbidden_words", {}).get("forbidden_words", [])
    if any(re.search(rf"\b{re.escape(w)}\b", sentence, re.IGNORECASE) for w in forbidden):
        return False
    letter = constraints.get("keywords:letter_frequency", {})
    return not (letter.get("let_relation") == "less than"
                and letter["letter"].lower() in sentence.lower())


def _body_pool(topic: str, constraints: Mapping[str, dict[str, Any]],
               rng: random.Random) -> list[str]:
    filled = [s.format(t=topic, T=topic[:1].upper() + topic[1:]) for s in BODY]
    pool = [s for s in filled if _allowed(s, constraints)]
    rng.shuffle(pool)
    return pool or ["It takes time."]


def _specials(topic: str, constraints: Mapping[str, dict[str, Any]]) -> list[str]:
    """Sentences that instructions require somewhere in the body."""
    out: list[str] = []
    for k in constraints.get("keywords:existence", {}).get("keywords", []):
        out.append(KEYWORD_SENTENCES[len(out) % len(KEYWORD_SENTENCES)].format(k=k))
    freq = constraints.get("keywords:frequency")
    if freq and freq["relation"] == "at least":
        out += [KEYWORD_SENTENCES[i % len(KEYWORD_SENTENCES)].format(k=freq["keyword"])
                for i in range(freq["frequency"])]
    if "detectable_content:number_placeholders" in constraints:
        n = constraints["detectable_content:number_placeholders"]["num_placeholders"]
        names = " and ".join(f"[{PLACEHOLDERS[i % len(PLACEHOLDERS)]}]" for i in range(n))
        out.append(f"Please fill in {names} before you share this.")
    cap = constraints.get("change_case:capital_word_frequency")
    if cap and cap["capital_relation"] == "at least":
        chosen = [CAPITAL_WORDS[i % len(CAPITAL_WORDS)] for i in range(cap["capital_frequency"])]
        out.append(f"Keep these words in mind: {' and '.join(chosen)}.")
    return out


def _paragraph_count(constraints: Mapping[str, dict[str, Any]], rng: random.Random) -> int:
    for iid, key in (("length_constraints:number_paragraphs", "num_paragraphs"),
                     ("length_constraints:nth_paragraph_first_word", "num_paragraphs"),
                     ("detectable_format:multiple_sections", "num_sections")):
        if iid in constraints:
            return int(constraints[iid][key])
    return rng.randint(1, 3)


def _compose(topic: str, kind: str, constraints: Mapping[str, dict[str, Any]],
             n_body: int, offset: int, rng_seed: str) -> str:
    """One reply (without the whole-text transforms) with ``n_body`` body sentences."""
    rng = random.Random(rng_seed)
    pool = _body_pool(topic, constraints, rng)
    n_par = _paragraph_count(constraints, rng)
    highlights = constraints.get("detectable_format:number_highlighted_sections")
    n_highlights = highlights["num_highlights"] if highlights else 0
    sentences = [pool[(offset + i) % len(pool)] for i in range(max(n_body, n_par, n_highlights))]
    for j in range(n_highlights):
        # Inline, never at the start of a line, where it would read as a bullet.
        sentences[j] = f"Key point: *{sentences[j].rstrip('.')}*."
    specials = _specials(topic, constraints)
    paragraphs: list[list[str]] = [[] for _ in range(n_par)]
    for i, s in enumerate(specials + sentences):
        paragraphs[i % n_par].append(s)
    nth = constraints.get("length_constraints:nth_paragraph_first_word")
    if nth:
        word = nth["first_word"]
        paragraphs[nth["nth_paragraph"] - 1].insert(0, f"{word[:1].upper()}{word[1:]} is a good "
                                                       "place to start.")
    blocks = [" ".join(p) for p in paragraphs]
    if kind == "yesno":
        opener = ("My answer is yes." if "detectable_format:constrained_response" in constraints
                  else "Yes.")
        blocks[0] = f"{opener} {blocks[0]}"
    bullets = constraints.get("detectable_format:number_bullet_lists")
    if bullets:
        tips = [t for t in TIPS if _allowed(t, constraints)] or ["Begin."]
        lines = [f"* {tips[i % len(tips)]}" for i in range(bullets["num_bullets"])]
        blocks[0] = blocks[0] + "\n" + "\n".join(lines)
    sections = constraints.get("detectable_format:multiple_sections")
    if sections:
        blocks = [f"{sections['section_spliter']} {i + 1}\n{b}" for i, b in enumerate(blocks)]
    separator = ("\n\n***\n\n" if "length_constraints:number_paragraphs" in constraints
                 else "\n\n")
    text = separator.join(blocks)
    if "detectable_format:title" in constraints:
        text = f"<<{topic.title()}>>\n{text}"
    return text


def _letter_fill(text: str, constraints: Mapping[str, dict[str, Any]]) -> str:
    spec = constraints.get("keywords:letter_frequency")
    if not spec or spec["let_relation"] != "at least":
        return text
    letter = spec["letter"].lower()
    missing = spec["let_frequency"] - text.lower().count(letter)
    if missing <= 0:
        return text
    words = [w for w in FILLER if letter in w] or [letter * 3]
    chosen: list[str] = []
    while missing > 0:
        w = words[len(chosen) % len(words)]
        chosen.append(w)
        missing -= w.count(letter)
    return f"{text} Words worth knowing here: {' and '.join(chosen)}."


def _finish(text: str, constraints: Mapping[str, dict[str, Any]], prompt_to_repeat: str) -> str:
    if "combination:repeat_prompt" in constraints:
        text = f"{prompt_to_repeat}\n{text}"
    ps = constraints.get("detectable_content:postscript")
    if ps:
        text = f"{text}\n{ps['postscript_marker']} Thank you for reading this far."
    end = constraints.get("startend:end_checker")
    if end:
        text = f"{text} {end['end_phrase']}"
    if "change_case:english_lowercase" in constraints:
        text = text.lower()
    if "change_case:english_capital" in constraints:
        text = text.upper()
    if "startend:quotation" in constraints:
        text = f'"{text}"'
    return text


def write_reply(topic: str, kind: str, instruction_ids: Sequence[str],
                kwargs: Sequence[dict[str, Any]], prompt_to_repeat: str, seed: str) -> str:
    """A reply of this construction that passes every checker (or the last one tried).

    The body starts at a seeded 3-6 sentences (a reply worth training on), grows
    while an "at least" count fails, and shrinks if it must.
    """
    constraints = dict(zip(instruction_ids, kwargs, strict=True))
    checkers: list[Checker] = [make_checker(i, kw) for i, kw in constraints.items()]
    base = random.Random(f"{seed}/length").randint(3, 6)
    text = ""
    for n_body in [*range(base, 120), *range(base - 1, 0, -1)]:
        if "detectable_format:json_format" in constraints:
            body = _compose(topic, kind, constraints, n_body, 0, seed)
            text = json.dumps({"title": topic, "answer": body}, indent=2)
        elif "combination:two_responses" in constraints:
            first = _compose(topic, kind, constraints, n_body, 0, seed)
            second = _compose(topic, kind, constraints, n_body, n_body + 3, seed + "/2")
            text = f"{first}\n******\n{second}"
        else:
            text = _compose(topic, kind, constraints, n_body, 0, seed)
        text = _finish(_letter_fill(text, constraints), constraints, prompt_to_repeat)
        if all(c.check(text) for c in checkers):
            return text
    return text
