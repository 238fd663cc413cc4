"""Graph API message bodies for what Rasa sends, within WhatsApp's limits.

Pure functions: each returns the list of message bodies (without the envelope that names
the recipient) that carry one Rasa response on WhatsApp.
"""

from __future__ import annotations

import re
from typing import Any

TEXT_LIMIT = 4096
INTERACTIVE_BODY_LIMIT = 1024
REPLY_BUTTONS_MAX = 3
BUTTON_TITLE_LIMIT = 20
BUTTON_ID_LIMIT = 256
LIST_ROWS_MAX = 10
LIST_ROW_TITLE_LIMIT = 24
LIST_ROW_DESCRIPTION_LIMIT = 72
LIST_ROW_ID_LIMIT = 200
LIST_BUTTON_LABEL = "Choose"
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+")


def clip(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def split_text(text: str, limit: int = TEXT_LIMIT) -> list[str]:
    """Chunks of at most `limit` characters, cut at a paragraph, else a sentence, else a
    line or word boundary; only the whitespace at a cut is dropped."""
    text = text.strip()
    chunks: list[str] = []
    while len(text) > limit:
        cut = _best_cut(text, limit)
        chunks.append(text[:cut].rstrip())
        text = text[cut:].lstrip()
    if text:
        chunks.append(text)
    return chunks


def _best_cut(text: str, limit: int) -> int:
    """Where to end the next chunk: the latest natural boundary within `limit`."""
    window = text[: limit + 1]
    paragraph = window.rfind("\n\n")
    sentence_ends = [m.end() for m in _SENTENCE_END.finditer(window) if m.start() > 0]
    sentence = sentence_ends[-1] if sentence_ends else -1
    line, word = window.rfind("\n"), window.rfind(" ")
    # Prefer the strongest boundary that does not leave a nearly empty message: a paragraph
    # when it fills a quarter of one, a sentence, line or word when it fills half.
    if paragraph > limit // 4:
        return paragraph
    for position in (sentence, line, word):
        if position > limit // 2:
            return position
    return (
        max(paragraph, sentence, line, word) if max(paragraph, sentence, line, word) > 0 else limit
    )


def text_bodies(text: str) -> list[dict[str, Any]]:
    return [{"type": "text", "text": {"body": chunk}} for chunk in split_text(text)]


def image_body(url: str, caption: str | None = None) -> dict[str, Any]:
    image: dict[str, Any] = {"link": url}
    if caption:
        image["caption"] = clip(caption, INTERACTIVE_BODY_LIMIT)
    return {"type": "image", "image": image}


def _interactive_text(text: str, room: int) -> tuple[list[dict[str, Any]], str]:
    """Long texts go out first as text; the interactive message gets what fits in `room`."""
    if len(text) <= room:
        return [], text or "Please choose:"
    return text_bodies(text), "Please choose:"


def buttons_bodies(text: str, buttons: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Reply buttons for up to 3 options, a list for 4–10, several lists beyond 10."""
    options = [
        (
            clip(str(b.get("payload") or b.get("title") or ""), LIST_ROW_ID_LIMIT),
            str(b.get("title") or ""),
        )
        for b in buttons
    ]
    pages = [options[i : i + LIST_ROWS_MAX] for i in range(0, len(options), LIST_ROWS_MAX)]
    page_mark = f" ({len(pages)}/{len(pages)})" if len(pages) > 1 else ""
    leading, body = _interactive_text(text, INTERACTIVE_BODY_LIMIT - len(page_mark))
    if len(options) <= REPLY_BUTTONS_MAX:
        return [
            *leading,
            {
                "type": "interactive",
                "interactive": {
                    "type": "button",
                    "body": {"text": body},
                    "action": {
                        "buttons": [
                            {
                                "type": "reply",
                                "reply": {
                                    "id": clip(option_id, BUTTON_ID_LIMIT),
                                    "title": clip(title, BUTTON_TITLE_LIMIT),
                                },
                            }
                            for option_id, title in options
                        ]
                    },
                },
            },
        ]
    bodies = []
    for number, page in enumerate(pages, start=1):
        page_body = body if len(pages) == 1 else f"{body} ({number}/{len(pages)})"
        rows = [
            {
                "id": option_id,
                "title": clip(title, LIST_ROW_TITLE_LIMIT),
                **(
                    {"description": clip(title, LIST_ROW_DESCRIPTION_LIMIT)}
                    if len(title) > LIST_ROW_TITLE_LIMIT
                    else {}
                ),
            }
            for option_id, title in page
        ]
        bodies.append(
            {
                "type": "interactive",
                "interactive": {
                    "type": "list",
                    "body": {"text": page_body},
                    "action": {
                        "button": LIST_BUTTON_LABEL,
                        "sections": [{"title": clip(f"Options {number}", 24), "rows": rows}],
                    },
                },
            }
        )
    return leading + bodies


TEMPLATE_PARAMETER_LIMIT = 1024


# A last line that is only a labelled link ("Receipt: https://…", as a confirmation ends).
_LINK_LINE = re.compile(r"[^\s:]{1,24}: https?://\S+")


def template_parameter(text: str) -> str:
    """Template parameters may not hold newlines, tabs or runs of spaces, nor more than
    TEMPLATE_PARAMETER_LIMIT characters. A text too long for it loses its last line first
    when that is a link line (a cut link is a broken link), then is clipped."""
    flat = re.sub(r"\s+", " ", text).strip()
    if len(flat) > TEMPLATE_PARAMETER_LIMIT:
        head, _, last = text.strip().rpartition("\n")
        if head and _LINK_LINE.fullmatch(last.strip()):
            flat = re.sub(r"\s+", " ", head).strip()
    return clip(flat, TEMPLATE_PARAMETER_LIMIT)


def template_body(name: str, language: str, parameters: list[str]) -> dict[str, Any]:
    template: dict[str, Any] = {"name": name, "language": {"code": language}}
    if parameters:
        template["components"] = [
            {
                "type": "body",
                "parameters": [{"type": "text", "text": template_parameter(p)} for p in parameters],
            }
        ]
    return {"type": "template", "template": template}


ENVELOPE_KEYS = frozenset({"messaging_product", "recipient_type", "to", "recipient"})


def envelope(customer_id: str, uses_user_id: bool, body: dict[str, Any]) -> dict[str, Any]:
    """The full send request: business-scoped ids go in `recipient`, phone ids in `to`.

    The envelope is written over the body: a body (a custom response, say) that carries
    `to`, `recipient` or `messaging_product` cannot send the message to someone else.
    """
    content = {k: v for k, v in body.items() if k not in ENVELOPE_KEYS}
    address = {"recipient": customer_id} if uses_user_id else {"to": customer_id}
    return {**content, "messaging_product": "whatsapp", "recipient_type": "individual", **address}


def is_business_scoped(customer_id: str) -> bool:
    """BSUIDs look like 'US.1349…' (country code, dot, digits); phone ids are digits only."""
    return not customer_id.isdigit()
