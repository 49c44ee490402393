"""Verifiable prompts at any scale, with reference replies: general-ability data for the CPU lab.

Each generated item is a base request (a template from a *family* -- blog
post, email, story, yes/no question, ... -- filled with a topic) plus one to
three compatible instructions with sampled kwargs, in IFEval's item format, so
the ``ifeval`` task scores generated items exactly like IFEval's own.
:func:`respond` writes a reply that follows every instruction (checked by the
same checkers), so an item doubles as an SFT example (:func:`to_example`).

Held-out split: the ``train`` and ``test`` splits use disjoint template
families and disjoint kwargs value ranges and vocabularies (see
``constraints.py``), so no test prompt, and no test instruction setting, is
ever seen in training. Generation is seeded and unbounded
(:func:`generate_items` is an infinite iterator); the same seed and split give
the same items in the same order.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sftmix import strict_json
from sftmix.data.records import Example, Message
from sftmix.errors import ConfigError
from sftmix.eval.tasks.ifeval.checkers import make_checker
from sftmix.eval.tasks.ifeval.constraints import SPECS, SPLITS, compatible
from sftmix.eval.tasks.ifeval.respond import write_reply

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Family:
    name: str
    split: str
    kind: str  # "prose" or "yesno" (a question answered yes/no, then explained)
    templates: tuple[str, ...]


FAMILIES = (
    Family("blog", "train", "prose", ("Write a short blog post about {topic}.",
                                      "Write a blog entry on {topic} for beginners.")),
    Family("email", "train", "prose", ("Write an email to a friend about {topic}.",
                                       "Draft an email inviting a colleague to try {topic}.")),
    Family("explain", "train", "prose", ("Explain {topic} to a curious teenager.",
                                         "Describe what makes {topic} interesting.")),
    Family("story", "train", "prose", ("Write a short story that involves {topic}.",)),
    Family("advice", "train", "prose", ("Give advice to someone who wants to get into {topic}.",)),
    Family("opinion", "train", "yesno", ("Is {topic} worth the time it takes?",
                                         "Should schools teach {topic}?")),
    Family("speech", "test", "prose", ("Write a short speech about {topic}.",)),
    Family("review", "test", "prose", ("Write a review of a book about {topic}.",)),
    Family("advert", "test", "prose", ("Write an advertisement for a class on {topic}.",)),
    Family("letter", "test", "prose", ("Write a letter to the editor about {topic}.",)),
    Family("recommend", "test", "yesno", ("Would you recommend {topic} to a busy parent?",
                                          "Can {topic} change how a person sees the world?")),
)

TOPICS = (
    "urban gardening", "learning a new language", "remote work", "healthy sleep",
    "public libraries", "bicycle commuting", "home cooking", "bird watching", "saving money",
    "volunteering", "board games", "ocean conservation", "music practice", "hiking safety",
    "time management", "recycling at home", "community theater", "photography", "beekeeping",
    "astronomy for beginners", "train travel", "baking bread", "learning to swim", "journaling",
    "tea culture", "chess", "rock climbing", "solar energy", "local history", "pottery",
)


@dataclass(frozen=True)
class GeneratedItem:
    key: str
    prompt: str
    instruction_id_list: list[str]
    kwargs: list[dict[str, Any]]
    family: str
    split: str
    topic: str
    kind: str = "prose"
    prompt_to_repeat: str = field(default="", repr=False)

    def to_ifeval(self) -> dict[str, Any]:
        """IFEval's ``input_data.jsonl`` record (plus the generator's own fields, ignored by IFEval)."""
        return {"key": self.key, "prompt": self.prompt,
                "instruction_id_list": list(self.instruction_id_list),
                "kwargs": [dict(k) for k in self.kwargs],
                "family": self.family, "split": self.split, "topic": self.topic}


def families(split: str) -> list[Family]:
    if split not in SPLITS:
        raise ConfigError(f"generator split {split!r}; expected one of {', '.join(SPLITS)}")
    return [f for f in FAMILIES if f.split == split]


def _choose_constraints(rng: random.Random, kind: str, count: int) -> list[str]:
    candidates = sorted(i for i, spec in SPECS.items() if kind in spec.kinds)
    chosen: list[str] = []
    rng.shuffle(candidates)
    for cid in candidates:
        if len(chosen) == count:
            break
        if all(compatible(cid, c) for c in chosen):
            chosen.append(cid)
    if kind == "yesno" and "detectable_format:constrained_response" not in chosen:
        # A yes/no question always asks for the fixed answer form (and stays within ``count``).
        chosen = ["detectable_format:constrained_response", *chosen[: count - 1]]
    return chosen


def _draft(rng: random.Random, split: str, index: int, seed: int,
           max_constraints: int) -> GeneratedItem:
    family = rng.choice(families(split))
    topic = rng.choice(TOPICS)
    request = rng.choice(family.templates).format(topic=topic)
    ids = _choose_constraints(rng, family.kind, rng.randint(1, max_constraints))
    # The repeat instruction comes last; the text before it is what must be repeated.
    ids.sort(key=lambda i: i == "combination:repeat_prompt")
    kwargs, phrases = [], []
    for iid in ids:
        kw = SPECS[iid].sample(rng, split)
        kwargs.append(kw)
        phrases.append(SPECS[iid].phrase(kw, rng))
    before_repeat = " ".join([request] + [p for i, p in zip(ids, phrases, strict=True)
                                          if i != "combination:repeat_prompt"])
    for iid, kw in zip(ids, kwargs, strict=True):
        if iid == "combination:repeat_prompt":
            kw["prompt_to_repeat"] = before_repeat
    return GeneratedItem(key=f"gen-{split}-{seed}-{index}", prompt=" ".join([request, *phrases]),
                         instruction_id_list=ids, kwargs=kwargs, family=family.name,
                         split=split, topic=topic, kind=family.kind,
                         prompt_to_repeat=before_repeat if "combination:repeat_prompt" in ids
                         else "")


def respond(item: GeneratedItem) -> str:
    """A reply that follows every instruction of ``item`` (deterministic per item key)."""
    return write_reply(item.topic, item.kind, item.instruction_id_list, item.kwargs,
                       item.prompt_to_repeat, seed=item.key)


def follows_all(item: GeneratedItem, reply: str) -> bool:
    return all(make_checker(i, kw).check(reply)
               for i, kw in zip(item.instruction_id_list, item.kwargs, strict=True))


def generate_items(seed: int, split: str = "train", *,
                   max_constraints: int = 3) -> Iterator[GeneratedItem]:
    """An endless, seeded stream of items whose reference reply follows all their instructions."""
    if not 1 <= max_constraints <= 3:
        raise ConfigError(f"max_constraints is {max_constraints}; expected 1, 2 or 3")
    families(split)  # validates the split
    rng = random.Random(f"sftmix-ifeval-gen/{split}/{seed}")
    seen: set[str] = set()  # prompt digests: the stream never repeats a prompt
    for index in itertools.count():
        item = _draft(rng, split, index, seed, max_constraints)
        digest = hashlib.sha256(item.prompt.encode()).hexdigest()[:16]
        if digest in seen:
            continue
        if follows_all(item, respond(item)):
            seen.add(digest)
            yield item
        else:
            log.debug("dropped %s (%s): no reference reply found", item.key,
                      item.instruction_id_list)


def generate(n: int, seed: int, split: str = "train", *,
             max_constraints: int = 3) -> list[GeneratedItem]:
    return list(itertools.islice(generate_items(seed, split, max_constraints=max_constraints), n))


def to_example(item: GeneratedItem, reply: str | None = None) -> Example:
    """An SFT example: the prompt as the user's turn, the reference reply as the assistant's."""
    text = respond(item) if reply is None else reply
    return Example(id=f"ifeval-gen:{item.key}", ability="general", source="ifeval-gen",
                   messages=(Message("user", item.prompt), Message("assistant", text)),
                   metadata={"instruction_id_list": list(item.instruction_id_list),
                             "family": item.family, "split": item.split})


def write_ifeval_jsonl(items: Iterable[GeneratedItem], path: str | Path) -> int:
    """Write items as an IFEval ``input_data.jsonl`` (atomically); returns the count."""
    lines = [strict_json.dumps(it.to_ifeval(), ensure_ascii=False) for it in items]
    target = Path(path)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    tmp.replace(target)
    return len(lines)


def item_from_dict(d: dict[str, Any]) -> GeneratedItem:
    """Inverse of :meth:`GeneratedItem.to_ifeval` for items this generator wrote."""
    repeat = next((kw.get("prompt_to_repeat", "") for kw in d["kwargs"]
                   if "prompt_to_repeat" in kw), "")
    kind = next((f.kind for f in FAMILIES if f.name == d["family"]), "prose")
    return GeneratedItem(key=d["key"], prompt=d["prompt"],
                         instruction_id_list=list(d["instruction_id_list"]),
                         kwargs=[dict(k) for k in d["kwargs"]], family=d["family"],
                         split=d["split"], topic=d["topic"], kind=kind, prompt_to_repeat=repeat)

