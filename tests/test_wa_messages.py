"""Graph API message bodies: text splitting, reply buttons and lists, templates, envelopes."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest

from connectors.whatsapp.messages import (
    INTERACTIVE_BODY_LIMIT,
    TEXT_LIMIT,
    buttons_bodies,
    envelope,
    image_body,
    is_business_scoped,
    split_text,
    template_body,
    template_parameter,
)

WORDS = ["green", "tea", "from", "the", "first", "flush", "is", "lighter", "and", "sweeter"]
USER_ID = "US.13491208655302741918"


def words(count: int, vocabulary: list[str] = WORDS) -> str:
    """`count` words separated by single spaces, cycling through `vocabulary`."""
    return " ".join(itertools.islice(itertools.cycle(vocabulary), count))


def sentence(number: int, length: int) -> str:
    """A sentence of exactly `length` characters ending with a full stop."""
    start = f"Sentence {number} says "
    filler = words(length)[: length - len(start) - 1].rstrip()
    return (start + filler).ljust(length - 1, "x") + "."


def options(count: int, title_length: int = 10) -> list[dict[str, Any]]:
    """Rasa buttons: payload '/order{"product": "p<n>"}', titles of `title_length` chars."""
    return [
        {
            "payload": f'/order{{"product": "p{n}"}}',
            "title": f"Option {n} ".ljust(title_length, "-")[:title_length],
        }
        for n in range(1, count + 1)
    ]


def interactive_of(body: dict[str, Any]) -> dict[str, Any]:
    assert body["type"] == "interactive"
    found: dict[str, Any] = body["interactive"]
    return found


def test_short_text_is_one_chunk() -> None:
    assert split_text("Your order ORD-1 is paid.") == ["Your order ORD-1 is paid."]
    assert split_text("x" * TEXT_LIMIT) == ["x" * TEXT_LIMIT]
    assert split_text("  padded  ") == ["padded"]
    assert split_text("   ") == []


def test_long_text_is_cut_into_chunks_that_rejoin_to_the_same_words() -> None:
    text = words(2000)[:9_999] + "!"
    assert len(text) == 10_000

    chunks = split_text(text)

    assert len(chunks) == 3
    assert all(0 < len(c) <= TEXT_LIMIT for c in chunks)
    assert " ".join(chunks) == text


def test_paragraphs_are_kept_whole() -> None:
    paragraphs = [f"Paragraph {n}. " + words(250 + 20 * n) for n in range(8)]
    text = "\n\n".join(paragraphs)
    assert len(text) > 2 * TEXT_LIMIT

    chunks = split_text(text)

    assert len(chunks) >= 3
    assert all(len(c) <= TEXT_LIMIT for c in chunks)
    assert "\n\n".join(chunks) == text
    for chunk in chunks:
        assert chunk.split("\n\n")[0] in paragraphs
        assert chunk.split("\n\n")[-1] in paragraphs


def test_too_long_paragraph_is_cut_at_sentences() -> None:
    sentences = [sentence(n, 60 + (n * 37) % 140) for n in range(100)]
    text = " ".join(sentences)
    assert len(text) > 2 * TEXT_LIMIT

    chunks = split_text(text)

    assert len(chunks) >= 3
    assert all(len(c) <= TEXT_LIMIT for c in chunks)
    assert all(c.endswith(".") for c in chunks)
    assert all(c.startswith("Sentence ") for c in chunks)
    assert " ".join(chunks) == text


def test_too_long_paragraph_among_others_keeps_the_short_paragraphs_whole() -> None:
    long_paragraph = " ".join(sentence(n, 120) for n in range(50))
    text = f"Intro paragraph.\n\n{long_paragraph}\n\nClosing paragraph."

    chunks = split_text(text)

    assert all(len(c) <= TEXT_LIMIT for c in chunks)
    assert chunks[0].startswith("Intro paragraph.\n\nSentence 0 ")
    assert chunks[-1].endswith(".\n\nClosing paragraph.")
    assert " ".join(chunks).split() == text.split()


def test_single_huge_word_is_hard_cut() -> None:
    word = "".join(itertools.islice(itertools.cycle("abcdefghij"), 9000))

    chunks = split_text(word)

    assert [len(c) for c in chunks] == [TEXT_LIMIT, TEXT_LIMIT, 9000 - 2 * TEXT_LIMIT]
    assert "".join(chunks) == word


def test_two_sentences_that_just_miss_one_chunk_keep_their_space() -> None:
    # Regression: split_text used to join sentence pieces with "", dropping the space
    # between two sentences whose lengths add up to exactly the limit.
    first = sentence(1, 2000)
    second = "B" * 2096
    text = f"{first} {second}"
    assert len(text) == TEXT_LIMIT + 1

    chunks = split_text(text)

    assert all(len(c) <= TEXT_LIMIT for c in chunks)
    assert " ".join(chunks).split() == text.split()


def test_emoji_and_right_to_left_text_are_preserved() -> None:
    vocabulary = ["👨‍👩‍👧‍👦", "🍵", "مرحبا", "بالعالم", "שלום", "עולם", "🇩🇪", "tea", "שָׁלוֹם"]
    short = " ".join(vocabulary)
    text = words(2500, vocabulary)
    assert len(text) > 2 * TEXT_LIMIT

    chunks = split_text(text)

    assert split_text(short) == [short]
    assert all(len(c) <= TEXT_LIMIT for c in chunks)
    assert " ".join(chunks) == text


def test_two_buttons_are_reply_buttons() -> None:
    buttons = [
        {"payload": "/affirm", "title": "Yes"},
        {"payload": "/deny", "title": "No, cancel my whole order please"},
    ]

    assert buttons_bodies("Pay for order ORD-1 now?", buttons) == [
        {
            "type": "interactive",
            "interactive": {
                "type": "button",
                "body": {"text": "Pay for order ORD-1 now?"},
                "action": {
                    "buttons": [
                        {"type": "reply", "reply": {"id": "/affirm", "title": "Yes"}},
                        {
                            "type": "reply",
                            "reply": {"id": "/deny", "title": "No, cancel my whole…"},
                        },
                    ]
                },
            },
        }
    ]


def test_three_buttons_are_still_reply_buttons() -> None:
    bodies = buttons_bodies("Which tea?", options(3, title_length=30))

    assert len(bodies) == 1
    interactive = interactive_of(bodies[0])
    assert interactive["type"] == "button"
    replies = [b["reply"] for b in interactive["action"]["buttons"]]
    assert [r["id"] for r in replies] == [o["payload"] for o in options(3)]
    assert all(len(r["title"]) == 20 and r["title"].endswith("…") for r in replies)


def test_button_without_payload_uses_its_title_as_id() -> None:
    bodies = buttons_bodies("Pick", [{"title": "Green tea"}])

    assert interactive_of(bodies[0])["action"]["buttons"][0]["reply"] == {
        "id": "Green tea",
        "title": "Green tea",
    }


@pytest.mark.parametrize("count", [4, 10])
def test_four_to_ten_options_are_one_list(count: int) -> None:
    bodies = buttons_bodies("Which tea?", options(count))

    assert len(bodies) == 1
    interactive = interactive_of(bodies[0])
    assert interactive["type"] == "list"
    assert interactive["body"] == {"text": "Which tea?"}
    assert interactive["action"]["button"] == "Choose"
    (section,) = interactive["action"]["sections"]
    assert section["rows"] == [{"id": o["payload"], "title": o["title"]} for o in options(count)]


def test_list_rows_clip_titles_and_ids() -> None:
    medium_title = "Darjeeling first flush, 100 g"
    long_title = "Organic first-flush Darjeeling, 100 g loose leaf, from the 2024 spring harvest"
    long_payload = "/order" + json.dumps({"product": "d" * 300})
    buttons = [
        {"payload": long_payload, "title": long_title},
        {"payload": "/order", "title": medium_title},
        *options(3),
    ]

    rows = interactive_of(buttons_bodies("Which tea?", buttons)[0])["action"]["sections"][0]["rows"]

    first, second = rows[0], rows[1]
    assert len(long_title) > 72
    assert len(first["title"]) == 24 and first["title"].endswith("…")
    assert long_title.startswith(first["title"][:-1])
    assert 60 < len(first["description"]) <= 72 and first["description"].endswith("…")
    assert long_title.startswith(first["description"][:-1])
    assert len(first["id"]) == 200 and long_payload.startswith(first["id"][:-1])
    assert second == {
        "id": "/order",
        "title": "Darjeeling first flush,…",
        "description": medium_title,
    }
    assert all("description" not in row for row in rows[2:])


def test_twenty_three_options_are_three_numbered_lists() -> None:
    bodies = buttons_bodies("Which tea?", options(23))

    lists = [interactive_of(b) for b in bodies]
    assert [i["type"] for i in lists] == ["list", "list", "list"]
    assert [i["body"]["text"] for i in lists] == [
        "Which tea? (1/3)",
        "Which tea? (2/3)",
        "Which tea? (3/3)",
    ]
    row_ids = [[row["id"] for row in i["action"]["sections"][0]["rows"]] for i in lists]
    assert [len(ids) for ids in row_ids] == [10, 10, 3]
    assert list(itertools.chain(*row_ids)) == [o["payload"] for o in options(23)]


def test_page_numbers_survive_a_body_near_the_limit() -> None:
    # Regression: a body just under the limit used to lose its " (n/m)" page mark to clip().
    text = words(200)[:1020].rstrip()
    assert len(text) <= INTERACTIVE_BODY_LIMIT

    bodies = buttons_bodies(text, options(23))

    sent_as_text = [b["text"]["body"] for b in bodies if b["type"] == "text"]
    page_bodies = [interactive_of(b)["body"]["text"] for b in bodies if b["type"] == "interactive"]
    assert len(page_bodies) == 3
    assert all(len(body) <= INTERACTIVE_BODY_LIMIT for body in page_bodies)
    assert [body.endswith(f"({n}/3)") for n, body in enumerate(page_bodies, 1)] == [True] * 3
    assert text in sent_as_text or all(body.startswith(text) for body in page_bodies)


def test_long_body_goes_first_as_text() -> None:
    text = words(400)
    assert len(text) > INTERACTIVE_BODY_LIMIT

    bodies = buttons_bodies(text, options(2))

    assert bodies[0] == {"type": "text", "text": {"body": text}}
    assert interactive_of(bodies[1])["body"] == {"text": "Please choose:"}
    assert len(bodies) == 2


def test_very_long_body_goes_first_as_several_texts() -> None:
    text = words(1800)

    bodies = buttons_bodies(text, options(5))

    leading = [b for b in bodies if b["type"] == "text"]
    assert bodies[: len(leading)] == leading
    assert len(leading) == 3
    assert " ".join(b["text"]["body"] for b in leading) == text
    assert interactive_of(bodies[-1])["type"] == "list"
    assert interactive_of(bodies[-1])["body"] == {"text": "Please choose:"}


def test_empty_body_gets_a_prompt() -> None:
    assert interactive_of(buttons_bodies("", options(1))[0])["body"] == {"text": "Please choose:"}


def test_image_body() -> None:
    url = "https://shop.example.test/tea.jpg"

    assert image_body(url) == {"type": "image", "image": {"link": url}}
    assert image_body(url, "Green tea") == {
        "type": "image",
        "image": {"link": url, "caption": "Green tea"},
    }
    long_caption = image_body(url, words(500))["image"]["caption"]
    assert len(long_caption) <= INTERACTIVE_BODY_LIMIT and long_caption.endswith("…")


def test_template_body_flattens_and_clips_parameters() -> None:
    body = template_body(
        "order_update",
        "en_US",
        ["Order ORD-1\nis\t\tshipped    today ", words(400)],
    )

    assert body["type"] == "template"
    template = body["template"]
    assert template["name"] == "order_update"
    assert template["language"] == {"code": "en_US"}
    (component,) = template["components"]
    assert component["type"] == "body"
    first, second = component["parameters"]
    assert first == {"type": "text", "text": "Order ORD-1 is shipped today"}
    assert second["type"] == "text"
    assert len(second["text"]) <= 1024 and second["text"].endswith("…")
    assert "\n" not in second["text"] and "  " not in second["text"]


def test_a_link_line_that_would_be_cut_is_left_out_of_the_template() -> None:
    receipt = "Receipt: https://pay.stripe.com/receipts/payment/CAcaFwoVYWNjdF8xMjM0"
    fits = f"Payment received, thank you! Order ORD-1 is confirmed:\nTotal: €25.80\n{receipt}"
    assert template_parameter(fits).endswith(receipt)  # whole when it fits
    lines = "\n".join(f"{i} × Espresso Beans — €12.90" for i in range(40))
    long = f"Payment received, thank you! Order ORD-1 is confirmed:\n{lines}\n{receipt}"
    sent = template_parameter(long)
    assert len(sent) <= 1024 and "https://" not in sent and "Receipt" not in sent
    assert sent.startswith("Payment received, thank you! Order ORD-1")
    short = "\n".join(f"{i} × Espresso Beans — €12.90" for i in range(33))
    sent = template_parameter(f"Order ORD-1 is confirmed:\n{short}\n{receipt}")
    assert "https://" not in sent and not sent.endswith("…")  # only the link line went


def test_template_body_without_parameters_has_no_components() -> None:
    assert template_body("hello_world", "en", []) == {
        "type": "template",
        "template": {"name": "hello_world", "language": {"code": "en"}},
    }


def test_envelope_for_a_phone_number() -> None:
    key = "15550001111"
    text = {"type": "text", "text": {"body": "Hi"}}

    assert is_business_scoped(key) is False
    assert envelope(key, is_business_scoped(key), text) == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": key,
        "type": "text",
        "text": {"body": "Hi"},
    }


@pytest.mark.parametrize(
    "override",
    [
        {"to": "15559999999"},
        {"recipient": "US.999"},
        {"messaging_product": "sms", "to": "15559999999"},
        {"recipient_type": "group", "recipient": "US.999", "to": "15559999999"},
    ],
)
def test_a_body_cannot_redirect_the_message(override: dict[str, str]) -> None:
    body = {"type": "text", "text": {"body": "Hi"}, **override}

    for key in ("15550001111", USER_ID):
        request = envelope(key, is_business_scoped(key), body)
        assert request["messaging_product"] == "whatsapp"
        assert request["recipient_type"] == "individual"
        address = "recipient" if is_business_scoped(key) else "to"
        assert {k: request.get(k) for k in ("to", "recipient")} == {
            "to": None,
            "recipient": None,
            address: key,
        }
        assert request["text"] == {"body": "Hi"}


def test_envelope_for_a_business_scoped_user() -> None:
    text = {"type": "text", "text": {"body": "Hi"}}

    assert is_business_scoped(USER_ID) is True
    request = envelope(USER_ID, is_business_scoped(USER_ID), text)
    assert request["recipient"] == USER_ID
    assert "to" not in request
    assert request["messaging_product"] == "whatsapp"
