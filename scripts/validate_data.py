"""`rasa data validate`, failing on every warning except the ones accepted below.

Rasa 3.6's `--fail-on-warnings` cannot tell an accepted warning from a new one, so this runs
the same checks in-process, records the warnings and fails on any not listed here.
"""

from __future__ import annotations

import re
import sys
import warnings

from rasa.cli.utils import validate_files
from rasa.shared.importers.importer import TrainingDataImporter

from scripts.settings_report import PROJECT_ROOT

# Each accepted warning with the reason it is accepted.
ACCEPTED_WARNINGS: dict[str, str] = {
    # Reserved intents are produced only by the connector (Stripe events, WhatsApp Flow
    # traffic). Giving them NLU examples would let a customer's text trigger them.
    r"The intent '(EXTERNAL_\w+|flow_\w+)' is listed in the domain file, "
    r"but is not found in the NLU training data\.": "reserved intents have no NLU examples",
    # Rasa's own action_default_fallback sends it when no policy is confident about the next
    # action (config.yml, core_fallback_action_name); no rule names it.
    r"The utterance 'utter_default' is not used in any story or rule\.": (
        "sent by Rasa's core fallback"
    ),
    # Rasa 3.6 raises this on every domain load, whatever the slots; its own CLI filters it
    # (rasa/utils/common.py, EXPECTED_WARNINGS).
    r"Slot auto-fill has been removed in 3\.0 .*": "always raised by Rasa 3.6",
}


def unaccepted(messages: list[str]) -> list[str]:
    """The warning messages that no accepted pattern covers."""
    patterns = [re.compile(p) for p in ACCEPTED_WARNINGS]
    return [m for m in messages if not any(p.fullmatch(m.strip()) for p in patterns)]


def main() -> int:
    importer = TrainingDataImporter.load_from_config(
        config_path=str(PROJECT_ROOT / "config.yml"),
        domain_path=str(PROJECT_ROOT / "domain.yml"),
        training_data_paths=[str(PROJECT_ROOT / "data")],
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        validate_files(fail_on_warnings=False, max_history=None, importer=importer)
    messages = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    problems = unaccepted(messages)
    for problem in problems:
        print(f"data validation warning: {problem}", file=sys.stderr)
    accepted = len(messages) - len(problems)
    print(f"data validation: {len(problems)} unaccepted warning(s), {accepted} accepted")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
