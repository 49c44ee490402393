"""Chat requests with verifiable constraints (IFEval style) and ordinary replies.

A request asks for a few sentences about a topic ("Write a short note about
gardening.") and may add one or more verifiable instructions whose ids and
kwargs are IFEval's (``punctuation:no_comma``, ``startend:end_checker`` with an
``end_phrase``, ...). The reference reply is *built* to follow them: topic
sentences are chosen, then shaped (bullets, ``***`` paragraphs), decorated
(title, placeholders, postscript, end phrase), and transformed (case, commas,
quotation marks) in that order, so that the IFEval checkers accept it.

Training records are ShareGPT conversations: constrained requests, ordinary
conversations without constraints (one or two turns), and, at a chosen
fraction, maths- or code-flavoured conversations taken from the maths and code
generators' training splits, as ShareGPT carries such conversations; setting
that fraction to 0 gives the reference study's removal ablation. Test records
are IFEval ``input_data.jsonl`` records (``key``, ``prompt``,
``instruction_id_list``, ``kwargs``), scored by the instruction-following
evaluator unchanged.

Held out: a request is one of five frames around a topic; each topic keeps one
frame for the test split (a different frame per topic), so a test request's
wording never occurs in training although its topic and frame do. On top, each
test (topic, instructions, kwargs) combination is reserved for the test split
by a content hash. Instruction phrasings are shared, as in the other lab
generators: the model must apply known instructions to new requests.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, model_validator

from sftmix.config import StrictModel
from sftmix.errors import ConfigError
from sftmix.lab.generators import code as code_gen
from sftmix.lab.generators import maths as maths_gen
from sftmix.lab.generators.heldout import Drawer, Drawn, Split, is_test_content, parse_difficulty
from sftmix.lab.generators.replies import (
    CONFLICTS,
    INSTRUCTIONS,
    Topic,
    build_reply,
    follows_word_limit,
    instruction_kwargs,
    instruction_text,
    reads_as_english,
    topic_sentences,
)

TOPICS = (
    Topic("gardening", ("plants", "soil", "water", "seeds"), ("relaxing", "rewarding")),
    Topic("cooking", ("recipes", "spices", "knives", "ovens"), ("creative", "useful")),
    Topic("running", ("shoes", "pace", "breathing", "distance"), ("healthy", "freeing")),
    Topic("chess", ("pieces", "openings", "tactics", "endgames"), ("deep", "calming")),
    Topic("painting", ("brushes", "colours", "canvas", "light"), ("expressive", "playful")),
    Topic("cycling", ("wheels", "helmets", "hills", "routes"), ("fast", "cheerful")),
    Topic("baking", ("flour", "butter", "yeast", "timing"), ("cosy", "precise")),
    Topic("reading", ("novels", "libraries", "authors", "chapters"), ("quiet", "enriching")),
    Topic("camping", ("tents", "fires", "maps", "stars"), ("adventurous", "simple")),
    Topic("photography", ("cameras", "lenses", "framing", "shadows"), ("artistic", "patient")),
    Topic("swimming", ("pools", "strokes", "goggles", "lanes"), ("refreshing", "steady")),
    Topic("music", ("melodies", "rhythm", "instruments", "practice"), ("joyful", "moving")),
    Topic("hiking", ("trails", "boots", "views", "weather"), ("peaceful", "challenging")),
    Topic("knitting", ("yarn", "needles", "patterns", "stitches"), ("soothing", "careful")),
    Topic("astronomy", ("telescopes", "planets", "orbits", "nights"), ("vast", "humbling")),
    Topic("recycling", ("plastic", "paper", "bins", "habits"), ("sensible", "important")),
    Topic("birdwatching", ("binoculars", "feathers", "songs", "mornings"), ("gentle", "curious")),
    Topic("pottery", ("clay", "wheels", "glazes", "kilns"), ("earthy", "focused")),
    Topic("sailing", ("wind", "ropes", "sails", "harbours"), ("bold", "free")),
    Topic("juggling", ("balls", "rhythm", "hands", "focus"), ("playful", "tricky")),
)

REQUESTS = ("Write a short note about {topic}.", "Tell me about {topic}.",
            "Describe {topic} in a few sentences.", "What do you think of {topic}?",
            "Could you share some thoughts on {topic}?")


def is_test_family(topic: int, request: int) -> bool:
    """Each topic keeps one of the five request frames for testing, a different one per topic."""
    return (topic + request) % len(REQUESTS) == 0


def _family(rng: random.Random, split: Split) -> tuple[Topic, str, str]:
    ti = rng.randrange(len(TOPICS))
    ri = rng.choice([r for r in range(len(REQUESTS)) if is_test_family(ti, r) == (split == "test")])
    return TOPICS[ti], REQUESTS[ri], f"{TOPICS[ti].name}/request{ri}"
FOLLOW_UPS = ("Can you tell me more?", "Thanks. What else should I know?")
SPECIALIST_ASKS = {
    "maths": ("Can you help me with this problem? {q}", "{q}"),
    "code": ("Please finish this Python function.\n\n{q}", "{q}"),
}


class GeneralDifficulty(StrictModel):
    """Knobs of the general generator."""

    min_instructions: int = Field(1, ge=1, le=4, description="instructions per constrained request")
    max_instructions: int = Field(2, ge=1, le=4)
    min_sentences: int = Field(3, ge=2, le=8, description="topic sentences in a plain reply")
    max_sentences: int = Field(4, ge=2, le=8)
    plain_fraction: float = Field(
        0.3, ge=0.0, le=1.0, description="train conversations without instructions")
    specialist_fraction: float = Field(
        0.0, ge=0.0, le=1.0, description="train conversations that are maths or code flavoured")
    specialist: Literal["maths", "code", "both"] = "both"
    specialist_maths: maths_gen.MathsDifficulty = Field(
        default_factory=maths_gen.MathsDifficulty, description="knobs of maths conversations")
    specialist_code: code_gen.CodeDifficulty = Field(
        default_factory=code_gen.CodeDifficulty, description="knobs of code conversations")
    instructions: tuple[str, ...] | None = Field(None, description="restrict to these instruction ids")

    @model_validator(mode="after")
    def _ranges(self) -> GeneralDifficulty:
        if self.min_instructions > self.max_instructions:
            raise ValueError("min_instructions must not exceed max_instructions")
        if self.min_sentences > self.max_sentences:
            raise ValueError("min_sentences must not exceed max_sentences")
        if self.plain_fraction + self.specialist_fraction > 1.0:
            raise ValueError("plain_fraction + specialist_fraction must be at most 1")
        return self


@dataclass(frozen=True)
class GeneralProblem(Drawn):
    turns: tuple[tuple[str, str], ...]  # (user, assistant) pairs
    instruction_ids: tuple[str, ...]
    kwargs: tuple[dict[str, Any], ...]
    kind: str  # "constrained", "plain", "maths", "code"

    @property
    def identity(self) -> str:
        # Conversations may share an opening request ("Tell me about chess.") as
        # ShareGPT's do; only whole repeated conversations are duplicates.
        return json.dumps(self.turns)

    @property
    def reply(self) -> str:
        return self.turns[-1][1]

    def sharegpt(self, conversation_id: str) -> dict[str, Any]:
        conv = []
        for user, assistant in self.turns:
            conv += [{"from": "human", "value": user}, {"from": "gpt", "value": assistant}]
        return {"id": conversation_id, "conversations": conv}

    def ifeval(self, key: int) -> dict[str, Any]:
        return {"key": key, "prompt": self.prompt, "instruction_id_list": list(self.instruction_ids),
                "kwargs": [dict(k) for k in self.kwargs]}


def _choose_instructions(rng: random.Random, d: GeneralDifficulty) -> list[str]:
    pool = [i for i in INSTRUCTIONS if d.instructions is None or i in d.instructions]
    want = rng.randint(d.min_instructions, d.max_instructions)
    chosen: list[str] = []
    rng.shuffle(pool)
    for ins in pool:
        if len(chosen) == want:
            break
        if not any(frozenset((ins, c)) in CONFLICTS for c in chosen):
            chosen.append(ins)
    return chosen


def _constrained(rng: random.Random, split: Split, d: GeneralDifficulty) -> GeneralProblem:
    topic, frame, family = _family(rng, split)
    while True:
        ids = _choose_instructions(rng, d)
        kwargs = [instruction_kwargs(rng, i, topic) for i in ids]
        spec = dict(zip(ids, kwargs, strict=True))
        reply = build_reply(rng, topic, spec, d.min_sentences, d.max_sentences)
        if follows_word_limit(reply, spec) and reads_as_english(reply, spec):
            break
    request = " ".join([frame.format(topic=topic.name)]
                       + [instruction_text(i, k) for i, k in spec.items()])
    order = sorted(range(len(ids)), key=lambda j: ids[j])
    key = f"general:{topic.name}|" + json.dumps([[ids[j], kwargs[j]] for j in order], sort_keys=True)
    return GeneralProblem(key=key, family=family, prompt=request, turns=((request, reply),), instruction_ids=tuple(ids),
                          kwargs=tuple(kwargs), kind="constrained")


def _plain(rng: random.Random, d: GeneralDifficulty) -> GeneralProblem:
    topic, frame, family = _family(rng, "train")
    pool = topic_sentences(topic)
    count = rng.randint(d.min_sentences, d.max_sentences)
    order = sorted(rng.sample(range(len(pool)), min(len(pool), count + 2)))
    first, rest = order[:count], order[count:]
    request = frame.format(topic=topic.name)
    turns = [(request, " ".join(pool[i] for i in first))]
    if rest and rng.random() < 0.5:
        turns.append((rng.choice(FOLLOW_UPS), " ".join(pool[i] for i in rest)))
    key = f"general:{topic.name}|plain|{order}"
    return GeneralProblem(key=key, family=family, prompt=request, turns=tuple(turns),
                          instruction_ids=(), kwargs=(), kind="plain")


def _specialist(rng: random.Random, d: GeneralDifficulty) -> GeneralProblem:
    kind = d.specialist if d.specialist != "both" else rng.choice(("maths", "code"))
    # Only training content: the general data must never carry a maths or code test item.
    while True:
        if kind == "maths":
            m = maths_gen.make_problem(rng, "train", d.specialist_maths)
            key, question, answer = m.key, m.question, m.answer
        else:
            c = code_gen.make_problem(rng, "train", d.specialist_code)
            key, question, answer = c.key, c.signature_prompt, c.body
        if not is_test_content(key):
            break
    request = rng.choice(SPECIALIST_ASKS[kind]).format(q=question)
    return GeneralProblem(key=key, family=f"specialist:{kind}", prompt=request,
                          turns=((request, answer),), instruction_ids=(), kwargs=(), kind=kind)


def make_problem(rng: random.Random, split: Split, d: GeneralDifficulty) -> GeneralProblem:
    if split == "test":
        return _constrained(rng, split, d)
    u = rng.random()
    if u < d.specialist_fraction:
        return _specialist(rng, d)
    # Redraw held-out content here rather than let the drawer skip it: skipping would
    # skew the mixture towards specialist conversations, which are never skipped.
    while True:
        problem = _plain(rng, d) if u < d.specialist_fraction + d.plain_fraction \
            else _constrained(rng, split, d)
        if not is_test_content(problem.key):
            return problem


def problems(n: int | None, seed: int, split: str = "train",
             difficulty: GeneralDifficulty | dict[str, Any] | None = None) -> Iterator[GeneralProblem]:
    """Distinct general problems of one split (``n=None``: without end)."""
    d = parse_difficulty(GeneralDifficulty, difficulty, "general")
    if d.instructions is not None:
        unknown = sorted(set(d.instructions) - set(INSTRUCTIONS))
        if unknown or not d.instructions:
            raise ConfigError(f"general difficulty 'instructions': found {unknown or 'an empty list'}"
                              f", expected ids among: {', '.join(INSTRUCTIONS)}")
    drawer: Drawer[GeneralProblem] = Drawer("general", lambda rng, s: make_problem(rng, s, d))
    return drawer.draw(n, seed, split)


def generate(n: int | None, seed: int, split: str = "train",
             difficulty: GeneralDifficulty | dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
    """ShareGPT records for ``train``; IFEval ``input_data.jsonl`` records for ``test``."""
    for i, problem in enumerate(problems(n, seed, split, difficulty)):
        yield problem.ifeval(1000 + i) if split == "test" else problem.sharegpt(f"lab-general-{i}")
