"""The shape checks the Graph API applies to a message send, as pure functions.

Meta's limits are written down here on their own, not imported from the product, so the
emulator catches a product that breaks them. A failed check raises `InvalidMessage` with
Meta's error code and a message naming the parameter, which the emulator answers with 400.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from sandbox.commerce_rules import COMMERCE_CHECKS, CatalogItems, no_catalogs
from sandbox.rule_basics import (
    INVALID_PARAMETER,
    REQUIRED_PARAMETER,
    InvalidMessage,
    _dict,
    _require,
    _text,
)

__all__ = ["INVALID_PARAMETER", "REQUIRED_PARAMETER", "InvalidMessage"]

TEXT_MAX = 4096
INTERACTIVE_BODY_MAX = 1024
HEADER_FOOTER_MAX = 60
BUTTONS_MAX = 3
BUTTON_TITLE_MAX = 20
BUTTON_ID_MAX = 256
LIST_BUTTON_MAX = 20
LIST_SECTIONS_MAX = 10
LIST_ROWS_MAX = 10
SECTION_TITLE_MAX = 24
ROW_TITLE_MAX = 24
ROW_DESCRIPTION_MAX = 72
ROW_ID_MAX = 200
CTA_DISPLAY_TEXT_MAX = 20
FLOW_CTA_MAX = 20
TEMPLATE_PARAMETER_MAX = 1024
TEMPLATE_MISSING = 132001  # "(#132001) Template name does not exist in the translation"
TEMPLATE_PARAMETERS = 132000  # "(#132000) Number of parameters does not match"
ANY_VARIABLES = -1  # a template whose variables are not known: any number is accepted


@dataclass(frozen=True)
class Account:
    """What the WhatsApp Business Account has published, as the checks need it."""

    #: The Flow JSON published under a Flow id, or None when there is no such Flow.
    flow: Callable[[str], Mapping[str, Any] | None]
    #: How many body variables an approved template has (or ANY_VARIABLES), None when it
    #: is not approved.
    template_variables: Callable[[str], int | None]
    #: The retailer ids of a catalog connected to the account, None when it is not.
    catalog_items: CatalogItems = no_catalogs


def check_text(body: Mapping[str, Any], account: Account) -> None:
    _text(_dict(body.get("text"), "text").get("body"), "text.body", TEXT_MAX)


def _check_buttons(action: Mapping[str, Any]) -> None:
    buttons = action.get("buttons")
    _require(
        isinstance(buttons, list) and 1 <= len(buttons) <= BUTTONS_MAX,
        f"interactive.action.buttons must hold 1 to {BUTTONS_MAX} buttons",
    )
    assert isinstance(buttons, list)
    ids = []
    for index, button in enumerate(buttons):
        where = f"interactive.action.buttons[{index}]"
        _require(_dict(button, where).get("type") == "reply", f"{where}.type must be reply")
        reply = _dict(button.get("reply"), f"{where}.reply")
        ids.append(_text(reply.get("id"), f"{where}.reply.id", BUTTON_ID_MAX))
        _text(reply.get("title"), f"{where}.reply.title", BUTTON_TITLE_MAX)
    _require(len(set(ids)) == len(ids), "interactive.action.buttons: reply ids must be unique")


def _check_list(action: Mapping[str, Any]) -> None:
    _text(action.get("button"), "interactive.action.button", LIST_BUTTON_MAX)
    sections = action.get("sections")
    _require(
        isinstance(sections, list) and 1 <= len(sections) <= LIST_SECTIONS_MAX,
        f"interactive.action.sections must hold 1 to {LIST_SECTIONS_MAX} sections",
    )
    assert isinstance(sections, list)
    rows = 0
    for index, section in enumerate(sections):
        where = f"interactive.action.sections[{index}]"
        _text(
            _dict(section, where).get("title"),
            f"{where}.title",
            SECTION_TITLE_MAX,
            len(sections) > 1,
        )
        section_rows = section.get("rows")
        _require(
            isinstance(section_rows, list) and len(section_rows) > 0, f"{where}.rows is required"
        )
        for number, row in enumerate(section_rows):
            row_where = f"{where}.rows[{number}]"
            _text(_dict(row, row_where).get("id"), f"{row_where}.id", ROW_ID_MAX)
            _text(row.get("title"), f"{row_where}.title", ROW_TITLE_MAX)
            _text(row.get("description"), f"{row_where}.description", ROW_DESCRIPTION_MAX, False)
            rows += 1
    _require(rows <= LIST_ROWS_MAX, f"a list holds at most {LIST_ROWS_MAX} rows in all")


def _check_url(value: str, where: str) -> None:
    """Meta fetches or opens the URL itself: it must be http(s) and name a host."""
    try:
        url = urlparse(value)
        valid = url.scheme in ("http", "https") and bool(url.hostname)
    except ValueError:  # e.g. an unclosed "[" in the host
        valid = False
    _require(valid, f"{where} is not a URL")


def _check_cta_url(action: Mapping[str, Any]) -> None:
    _require(action.get("name") == "cta_url", "interactive.action.name must be cta_url")
    parameters = _dict(action.get("parameters"), "interactive.action.parameters")
    _text(parameters.get("display_text"), "parameters.display_text", CTA_DISPLAY_TEXT_MAX)
    _check_url(_text(parameters.get("url"), "parameters.url", 2000), "parameters.url")


def _check_flow(action: Mapping[str, Any], account: Account) -> None:
    _require(action.get("name") == "flow", "interactive.action.name must be flow")
    parameters = _dict(action.get("parameters"), "interactive.action.parameters")
    _require(parameters.get("flow_message_version") == "3", "flow_message_version must be 3")
    _text(parameters.get("flow_token"), "parameters.flow_token", 2000)
    _text(parameters.get("flow_cta"), "parameters.flow_cta", FLOW_CTA_MAX)
    flow_id = _text(parameters.get("flow_id"), "parameters.flow_id", 100)
    flow = account.flow(flow_id)
    _require(flow is not None, f"parameters.flow_id: no published Flow {flow_id}")
    assert flow is not None
    mode = parameters.get("flow_action", "navigate")
    _require(mode in ("navigate", "data_exchange"), "flow_action must be navigate or data_exchange")
    if mode == "navigate":
        payload = _dict(parameters.get("flow_action_payload"), "parameters.flow_action_payload")
        screens = {s["id"]: s for s in flow["screens"]}
        screen = screens.get(str(payload.get("screen")))
        _require(screen is not None, "flow_action_payload.screen is not a screen of the Flow")
        assert screen is not None
        sent = set(_dict(payload.get("data", {}), "flow_action_payload.data"))
        declared = set(screen.get("data", {}))
        _require(
            sent == declared,
            f"flow_action_payload.data must match screen {screen['id']}: {sorted(sent ^ declared)}",
        )


def check_interactive(body: Mapping[str, Any], account: Account) -> None:
    interactive = _dict(body.get("interactive"), "interactive")
    kind = interactive.get("type")
    checks: dict[str, Callable[[Mapping[str, Any]], None]] = {
        "button": _check_buttons,
        "list": _check_list,
        "cta_url": _check_cta_url,
        "flow": lambda action: _check_flow(action, account),
    }
    if kind in COMMERCE_CHECKS:
        COMMERCE_CHECKS[str(kind)](interactive, account.catalog_items)
        return
    _require(kind in checks, f"interactive.type {kind!r} is not supported")
    _text(
        _dict(interactive.get("body"), "interactive.body").get("text"),
        "interactive.body.text",
        INTERACTIVE_BODY_MAX,
    )
    for part in ("header", "footer"):
        if part in interactive:
            _text(
                _dict(interactive[part], f"interactive.{part}").get("text"),
                f"interactive.{part}.text",
                HEADER_FOOTER_MAX,
            )
    checks[str(kind)](_dict(interactive.get("action"), "interactive.action"))


def check_template(body: Mapping[str, Any], account: Account) -> None:
    template = _dict(body.get("template"), "template")
    name = _text(template.get("name"), "template.name", 512)
    expected = account.template_variables(name)
    _require(expected is not None, f"template {name} is not approved", TEMPLATE_MISSING)
    _text(
        _dict(template.get("language"), "template.language").get("code"),
        "template.language.code",
        15,
    )
    for index, component in enumerate(template.get("components") or []):
        for number, parameter in enumerate(
            _dict(component, f"components[{index}]").get("parameters") or []
        ):
            where = f"template.components[{index}].parameters[{number}]"
            if _dict(parameter, where).get("type") == "text":
                text = _text(parameter.get("text"), f"{where}.text", TEMPLATE_PARAMETER_MAX)
                _require(
                    "\n" not in text and "\t" not in text and "    " not in text,
                    f"{where}.text: no new lines, tabs or more than 4 spaces in a row",
                )
    body_parameters = [
        parameter
        for component in template.get("components") or []
        if component.get("type") == "body"
        for parameter in component.get("parameters") or []
    ]
    _require(
        expected == ANY_VARIABLES or len(body_parameters) == expected,
        f"template {name} has {expected} body variables, {len(body_parameters)} given",
        TEMPLATE_PARAMETERS,
    )


def check_image(body: Mapping[str, Any], account: Account) -> None:
    image = _dict(body.get("image"), "image")
    _require(bool(image.get("link") or image.get("id")), "image.link or image.id is required")
    if image.get("link"):
        _check_url(_text(image["link"], "image.link", 2000), "image.link")
    _text(image.get("caption"), "image.caption", INTERACTIVE_BODY_MAX, False)


CHECKS: dict[str, Callable[[Mapping[str, Any], Account], None]] = {
    "text": check_text,
    "interactive": check_interactive,
    "template": check_template,
    "image": check_image,
}


def check_message(body: Mapping[str, Any], account: Account) -> None:
    """Raises InvalidMessage unless `body` is a send Meta accepts from `account`: a Flow
    message must name one of its Flows and match the screen, a template must be approved
    and get as many body parameters as it has variables."""
    kind = body.get("type", "text")
    _require(kind in CHECKS, f"type {kind!r} is not supported by this emulator")
    CHECKS[str(kind)](body, account)
