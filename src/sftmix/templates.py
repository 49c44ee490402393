"""Chat templates: how a conversation becomes text, and which parts of it are trained on.

A template renders a conversation into *segments* ``(text, trainable)``: the
concatenation of the texts is exactly the rendered string, and ``trainable`` is
true for the assistant's words and its end-of-turn marker, false for everything
else. Training tokenises the segments to build labels; evaluation renders the
prompt with ``add_generation_prompt=True`` so that a model is asked exactly the
way it was trained.

Built in:

* ``vicuna_v1.1`` -- the reference study's FastChat template::

      {system} USER: {query} ASSISTANT: {answer}</s>USER: ... ASSISTANT: ...</s>

  ``</s>`` stands for the tokenizer's end-of-sequence token.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from sftmix.data.records import Message
from sftmix.registry import Registry

VICUNA_SYSTEM = (
    "A chat between a curious user and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions."
)

Segment = tuple[str, bool]


class ChatTemplate(Protocol):
    name: str

    def segments(self, messages: Sequence[Message]) -> list[Segment]:
        """The full conversation as (text, trainable) pieces."""
        ...

    def render_prompt(self, messages: Sequence[Message]) -> str:
        """The conversation up to and including the cue for the assistant's next turn."""
        ...

    @property
    def stop_strings(self) -> list[str]:
        """Strings that end an assistant turn during generation."""
        ...


TEMPLATES: Registry[type] = Registry("chat template")


@TEMPLATES.register("vicuna_v1.1")
@dataclass
class VicunaTemplate:
    """FastChat's vicuna v1.1 conversation format (the reference study's template)."""

    eos: str = "</s>"
    default_system: str = VICUNA_SYSTEM
    name: str = "vicuna_v1.1"

    def _system(self, messages: Sequence[Message]) -> tuple[str, Sequence[Message]]:
        if messages and messages[0].role == "system":
            return messages[0].content, messages[1:]
        return self.default_system, messages

    def segments(self, messages: Sequence[Message]) -> list[Segment]:
        system, turns = self._system(messages)
        out: list[Segment] = [(system + " ", False)]
        for m in turns:
            if m.role == "user":
                out.append((f"USER: {m.content} ASSISTANT:", False))
            elif m.role == "assistant":
                out.append((f" {m.content}{self.eos}", True))
            else:
                raise ValueError(f"vicuna_v1.1: unexpected role {m.role!r} after the first message")
        return _merge(out)

    def render_prompt(self, messages: Sequence[Message]) -> str:
        system, turns = self._system(messages)
        text = system + " "
        for m in turns:
            if m.role == "user":
                text += f"USER: {m.content} ASSISTANT:"
            else:
                text += f" {m.content}{self.eos}"
        return text

    @property
    def stop_strings(self) -> list[str]:
        return [self.eos, "USER:"]


def _merge(segments: list[Segment]) -> list[Segment]:
    merged: list[Segment] = []
    for text, trainable in segments:
        if merged and merged[-1][1] == trainable:
            merged[-1] = (merged[-1][0] + text, trainable)
        elif text:
            merged.append((text, trainable))
    return merged


def render(template: ChatTemplate, messages: Sequence[Message]) -> str:
    return "".join(text for text, _ in template.segments(messages))
