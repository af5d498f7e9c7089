"""Platform-neutral message descriptions; each adapter renders them in its own format."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Header:
    text: str


@dataclass(frozen=True, slots=True)
class Text:
    text: str


@dataclass(frozen=True, slots=True)
class Bullets:
    items: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Fields:
    """Label and value pairs, shown side by side where the platform can."""

    pairs: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Context:
    """Small print: hints, footers, provenance."""

    text: str


@dataclass(frozen=True, slots=True)
class Divider:
    pass


Block = Header | Text | Bullets | Fields | Context | Divider


@dataclass(frozen=True, slots=True)
class Message:
    """An ordered list of blocks; `plain_text()` is the fallback every platform can show."""

    blocks: tuple[Block, ...]

    @classmethod
    def of(cls, *blocks: Block) -> Message:
        return cls(tuple(blocks))

    @classmethod
    def text(cls, text: str) -> Message:
        return cls((Text(text),))

    def plain_text(self) -> str:
        parts: list[str] = []
        for block in self.blocks:
            match block:
                case Header(text) | Text(text) | Context(text):
                    parts.append(text)
                case Bullets(items):
                    parts.append("\n".join(f"• {item}" for item in items))
                case Fields(pairs):
                    parts.append("\n".join(f"{label}: {value}" for label, value in pairs))
                case Divider():
                    parts.append("—" * 3)
        return "\n\n".join(parts)


def mention(user_id: str) -> str:
    """An inline mention in the `<@ID>` form that Slack and Discord both render; the console shows `@ID`."""
    return f"<@{user_id}>"
