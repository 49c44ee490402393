"""The normalised example record every reader produces and every later step consumes."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from sftmix import strict_json

ROLES = ("system", "user", "assistant")
ABILITIES = ("maths", "code", "general")  # built-in names; any other user-named ability is allowed


@dataclass(frozen=True, slots=True)
class Message:
    role: str
    content: str

    def to_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


@dataclass(frozen=True, slots=True)
class Example:
    """One SFT example.

    ``id`` is unique within its source and stable across runs (e.g. ``gsm8k:00042``);
    ``metadata`` holds optional extras such as the reference answer used for
    evaluation (``reference``) or the original record's index (``index``).
    """

    id: str
    ability: str
    source: str
    messages: tuple[Message, ...]
    metadata: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "ability": self.ability,
            "source": self.source,
            "messages": [m.to_dict() for m in self.messages],
            "metadata": self.metadata,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Example:
        return cls(
            id=str(d["id"]),
            ability=str(d["ability"]),
            source=str(d["source"]),
            messages=tuple(Message(m["role"], m["content"]) for m in d["messages"]),
            metadata=dict(d.get("metadata") or {}),
        )

    def to_json(self) -> str:
        return strict_json.dumps(self.to_dict(), ensure_ascii=False, sort_keys=True)

    @property
    def prompt_messages(self) -> tuple[Message, ...]:
        """Everything before the last assistant turn (what a model is asked)."""
        last = max(i for i, m in enumerate(self.messages) if m.role == "assistant")
        return self.messages[:last]

    def content_hash(self) -> str:
        """Hash of the normalised conversation (roles and whitespace-collapsed text).

        Two examples with the same hash are exact duplicates whatever their ids or sources.
        """
        h = hashlib.sha256()
        for m in self.messages:
            h.update(m.role.encode())
            h.update(b"\x00")
            h.update(" ".join(m.content.split()).encode())
            h.update(b"\x01")
        return h.hexdigest()
