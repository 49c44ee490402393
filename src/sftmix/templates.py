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
* ``model`` -- the model's own chat template (``tokenizer.apply_chat_template``).
  Trainable segments are derived by rendering growing prefixes of the
  conversation: what the rendering of ``messages[:i+1]`` adds to the rendering
  of ``messages[:i]`` with the generation cue is the assistant's turn. A
  template whose earlier output changes when a message is appended (e.g. one
  that strips the reasoning of earlier turns) is not *prefix-stable*; it is
  refused with an error rather than trained with wrong labels.
* a user template from the config (:class:`UserTemplateSpec`): one format
  string per role with ``{content}`` and, for the assistant, ``{eos}``.

:func:`get_template` builds any of them for a tokenizer, filling in its
end-of-sequence token.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import ValidationError, field_validator, model_validator

from sftmix.config import StrictModel, describe_validation_error
from sftmix.data.records import Message
from sftmix.errors import ConfigError, SftmixError
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


# -- the model's own template -------------------------------------------------------------


class ModelChatTemplate:
    """The tokenizer's own chat template, with trainable segments found by prefix rendering.

    For each assistant message ``i`` the template is rendered twice: the
    conversation before it with the generation cue (the prompt the model sees
    at inference), and the conversation up to and including it. The second
    must extend the first, and each must extend everything rendered before; the
    difference is the assistant's turn. The turn is trainable up to and
    including its last end-of-sequence token; whatever the template writes
    after that (typically a newline) is not, because a model stops at the
    end-of-turn token and never generates it.
    """

    def __init__(self, tokenizer: Any, name: str = "model") -> None:
        if not getattr(tokenizer, "chat_template", None):
            raise ConfigError(
                f"template 'model': the tokenizer {_tokenizer_name(tokenizer)} has no chat template "
                f"(expected tokenizer.chat_template to be set); use 'vicuna_v1.1' or a user template"
            )
        self.tokenizer = tokenizer
        self.name = name
        self.eos: str | None = getattr(tokenizer, "eos_token", None)

    def _render(self, messages: Sequence[Message], generation_prompt: bool) -> str:
        try:
            text = self.tokenizer.apply_chat_template(
                [m.to_dict() for m in messages], tokenize=False,
                add_generation_prompt=generation_prompt,
            )
        except Exception as exc:  # jinja raises arbitrary exceptions (e.g. raise_exception())
            roles = ", ".join(m.role for m in messages)
            raise SftmixError(
                f"template 'model' of tokenizer {_tokenizer_name(tokenizer=self.tokenizer)} could not "
                f"render a conversation with roles [{roles}]: {exc}"
            ) from None
        return str(text)

    def _not_stable(self, index: int, before: str, after: str) -> SftmixError:
        return SftmixError(
            f"template 'model' of tokenizer {_tokenizer_name(self.tokenizer)} is not prefix-stable: "
            f"rendering the conversation up to message {index} does not start with the rendering of "
            f"the messages before it (found {after[:80]!r}... after {before[-80:]!r}), so the "
            f"assistant's tokens cannot be located exactly; expected a template whose output only "
            f"grows as messages are appended. Use 'vicuna_v1.1' or a user template instead"
        )

    def segments(self, messages: Sequence[Message]) -> list[Segment]:
        out: list[Segment] = []
        done = ""
        for i, m in enumerate(messages):
            if m.role != "assistant":
                continue
            prompt = self._render(messages[:i], generation_prompt=True)
            full = self._render(messages[: i + 1], generation_prompt=False)
            if not prompt.startswith(done):
                raise self._not_stable(i - 1, done, prompt)
            if not full.startswith(prompt):
                raise self._not_stable(i, prompt, full)
            turn = full[len(prompt):]
            cut = turn.rfind(self.eos) + len(self.eos) if self.eos and self.eos in turn else len(turn)
            out += [(prompt[len(done):], False), (turn[:cut], True), (turn[cut:], False)]
            done = full
        if messages and messages[-1].role != "assistant":
            rest = self._render(messages, generation_prompt=False)
            if not rest.startswith(done):
                raise self._not_stable(len(messages) - 1, done, rest)
            out.append((rest[len(done):], False))
        return _merge(out)

    def render_prompt(self, messages: Sequence[Message]) -> str:
        return self._render(messages, generation_prompt=True)

    @property
    def stop_strings(self) -> list[str]:
        return [self.eos] if self.eos else []


# -- a template written in the config -----------------------------------------------------

_FIELDS = {"system": ("content",), "user": ("content",), "assistant": ("content", "eos")}


def _placeholders(fmt: str) -> list[str]:
    try:
        return [name for _, name, _, _ in string.Formatter().parse(fmt) if name is not None]
    except ValueError as exc:
        raise ValueError(f"not a valid format string ({exc}); write a literal brace as {{{{ or }}}}") from None


class UserTemplateSpec(StrictModel):
    """A chat template given in the config: one format string per role.

    ``{content}`` is the message text; the assistant's format must also contain
    ``{eos}`` (the end-of-turn marker, by default the tokenizer's end-of-sequence
    token) after ``{content}``. What the assistant format writes before
    ``{content}`` is the cue that asks the model to answer (not trained on);
    ``{content}`` through ``{eos}`` is trained on; anything after ``{eos}`` is not.
    """

    name: str = "user"
    system: str = "{content}\n\n"
    """Format of a system message (the first message, if its role is system)."""
    user: str
    """Format of a user message, e.g. ``"### Instruction:\n{content}\n\n"``."""
    assistant: str
    """Format of an assistant message, e.g. ``"### Response:\n{content}{eos}\n\n"``."""
    default_system: str | None = None
    """System text used when a conversation has none (none if unset)."""
    eos: str | None = None
    """End-of-turn marker; unset means the tokenizer's end-of-sequence token."""

    @field_validator("system", "user", "assistant")
    @classmethod
    def _check_format(cls, value: str, info: Any) -> str:
        allowed = _FIELDS[info.field_name]
        names = _placeholders(value)
        unknown = sorted(set(names) - set(allowed))
        if unknown:
            raise ValueError(
                f"found placeholder(s) {', '.join('{' + n + '}' for n in unknown)}, expected only "
                f"{', '.join('{' + n + '}' for n in allowed)}"
            )
        for name in allowed:
            if names.count(name) != 1:
                raise ValueError(
                    f"found {{{name}}} {names.count(name)} times in {value!r}, expected it exactly once"
                )
        return value

    @model_validator(mode="after")
    def _eos_after_content(self) -> UserTemplateSpec:
        if self.assistant.index("{eos}") < self.assistant.index("{content}"):
            raise ValueError("field 'assistant': {eos} must come after {content}")
        return self


@dataclass
class UserTemplate:
    """A :class:`UserTemplateSpec` bound to an end-of-turn marker."""

    spec: UserTemplateSpec
    eos: str

    @property
    def name(self) -> str:
        return self.spec.name

    def _split_assistant(self, content: str) -> tuple[str, str, str]:
        cue, rest = self.spec.assistant.split("{content}", 1)
        body, after = rest.split("{eos}", 1)
        return (cue.replace("{{", "{").replace("}}", "}"),
                content + body.format() + self.eos,
                after.format())

    def segments(self, messages: Sequence[Message]) -> list[Segment]:
        out: list[Segment] = []
        turns: Sequence[Message] = messages
        if messages and messages[0].role == "system":
            out.append((self.spec.system.format(content=messages[0].content), False))
            turns = messages[1:]
        elif self.spec.default_system is not None:
            out.append((self.spec.system.format(content=self.spec.default_system), False))
        for m in turns:
            if m.role == "user":
                out.append((self.spec.user.format(content=m.content), False))
            elif m.role == "assistant":
                cue, trained, after = self._split_assistant(m.content)
                out += [(cue, False), (trained, True), (after, False)]
            else:
                raise SftmixError(
                    f"template '{self.name}': unexpected role {m.role!r} after the first message "
                    f"(expected user or assistant)"
                )
        return _merge(out)

    def render_prompt(self, messages: Sequence[Message]) -> str:
        cue = self._split_assistant("")[0]
        return "".join(text for text, _ in self.segments(messages)) + cue

    @property
    def stop_strings(self) -> list[str]:
        user_cue = self.spec.user.split("{content}", 1)[0].strip()
        return [self.eos] + ([user_cue] if user_cue else [])


# -- building a template for a tokenizer --------------------------------------------------


def _tokenizer_name(tokenizer: Any) -> str:
    return repr(getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__)


def get_template(name_or_spec: str | UserTemplateSpec | dict[str, Any],
                 tokenizer: Any | None = None) -> ChatTemplate:
    """Build a chat template for ``tokenizer``.

    ``name_or_spec`` is a registered name (``vicuna_v1.1``), ``model`` for the
    tokenizer's own template, or a user template (a :class:`UserTemplateSpec`
    or its dict). The end-of-turn marker is the tokenizer's end-of-sequence
    token unless the spec sets one.
    """
    eos = getattr(tokenizer, "eos_token", None) if tokenizer is not None else None
    if isinstance(name_or_spec, dict):
        try:
            name_or_spec = UserTemplateSpec.model_validate(name_or_spec)
        except ValidationError as exc:
            raise ConfigError(describe_validation_error(exc, "user chat template",
                                                        prefix=("template",))) from None
    if isinstance(name_or_spec, UserTemplateSpec):
        marker = name_or_spec.eos or eos
        if not marker:
            raise ConfigError(
                f"template '{name_or_spec.name}': field 'eos' is unset and the tokenizer has no "
                f"end-of-sequence token; expected an eos string in the template"
            )
        return UserTemplate(name_or_spec, marker)
    if name_or_spec == "model":
        if tokenizer is None:
            raise ConfigError("template 'model' needs the model's tokenizer, and none was given")
        return ModelChatTemplate(tokenizer)
    if name_or_spec not in TEMPLATES:
        raise ConfigError(
            f"unknown chat template '{name_or_spec}'; available: {', '.join(template_names())}, "
            f"or a user template (a mapping with 'user' and 'assistant' format strings)"
        )
    cls = TEMPLATES.get(name_or_spec)
    if tokenizer is not None and not eos:
        raise ConfigError(
            f"template '{name_or_spec}': the tokenizer {_tokenizer_name(tokenizer)} has no "
            f"end-of-sequence token, which the template needs to end each assistant turn"
        )
    template: ChatTemplate = cls(eos=eos) if eos else cls()
    return template


def template_names() -> list[str]:
    """Every name :func:`get_template` accepts (besides a user template)."""
    return sorted([*TEMPLATES.names(), "model"])
