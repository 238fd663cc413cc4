"""Applies every patch in this package, on the one Rasa version they were written for.

The patches replace private functions of Rasa; on another version those functions may have
changed shape or meaning, and a patch would then silently undo a fix or break a turn. So a
version they were not checked against stops start-up instead.

The patch modules are imported by `install`, not here: they import Rasa's core (and with it
TensorFlow, ~5 s), which the Rasa server has loaded anyway, but a test or tool that only
imports the channel should not pay for.
"""

from __future__ import annotations

import rasa

from shop_contract.env_settings import ConfigError

EXPECTED_RASA_VERSION = "3.6.21"  # the version every patch was written and tested against


def install() -> None:
    """Applies the patches (installing twice is harmless); ConfigError on another Rasa."""
    if rasa.__version__ != EXPECTED_RASA_VERSION:
        raise ConfigError(
            f"rasa {rasa.__version__} is installed, but connectors/rasa_patches was written for "
            f"rasa {EXPECTED_RASA_VERSION} — install rasa=={EXPECTED_RASA_VERSION} "
            "(requirements.txt), or check each patch against the new version and update "
            "EXPECTED_RASA_VERSION"
        )
    from connectors.rasa_patches import (
        action_validation,
        event_types,
        failure_recording,
        intent_messages,
    )

    for patch in (action_validation, event_types, intent_messages, failure_recording):
        patch.apply()
