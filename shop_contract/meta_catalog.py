"""The shop's Meta commerce catalog: the setting that switches it on, read the same way by
both processes (the action server decides to offer products from it and checks carts
against it; the connector puts its id into the product messages it sends)."""

from __future__ import annotations

from collections.abc import Mapping

from shop_contract.env_settings import ConfigError

CATALOG_ID_VARIABLE = "WHATSAPP_CATALOG_ID"
_MOST_DIGITS = 32


def read_catalog_id(environ: Mapping[str, str]) -> str | None:
    """WHATSAPP_CATALOG_ID, or None when unset (no catalog messages, carts are not taken);
    ConfigError when it is not a catalog id (Meta's ids are digits)."""
    raw = environ.get(CATALOG_ID_VARIABLE, "").strip()
    if not raw:
        return None
    if not raw.isdigit() or len(raw) > _MOST_DIGITS:
        raise ConfigError(
            f"{CATALOG_ID_VARIABLE}: expected the catalog's id, digits only (Commerce Manager "
            "> your catalog > Settings, the catalog connected to the WhatsApp Business Account)"
        )
    return raw
