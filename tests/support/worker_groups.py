"""How `make pytest` shares the work between its workers (pytest-xdist `--dist loadgroup`).

Tests that share a module- or session-scoped fixture of ours (a running bot, the sandbox,
the emulators, a loaded model) go to one worker as a group, so the fixture is set up once:
the group is the module, or the fixture's name for a session-scoped one (the sandbox that
test_e2e_sandbox and test_browser share). Tests marked `rasa_core` share one group, unless
a session-scoped fixture puts them in its own: only that worker loads TensorFlow. Every
other test is a unit of its own, so the independent start-ups of test_recovery, say, run
side by side.

Live groups come first, then the other live tests, then groups of the rest, then the rest
(xdist's own reordering, by group size, is turned off: `--no-loadscope-reorder`): the long
start-ups begin at once and the short tests fill the gaps, instead of one worker finishing
a long module alone at the end. Order within a module is kept (some tests there run last on
purpose), and the order is the same on every worker, as xdist requires.
"""

from __future__ import annotations

import pytest

from tests.support import rasa_core_marker

OURS = "tests"  # fixtures defined under tests/ (pytest's own are cheap and per worker)
SHARED_SCOPES = ("session", "package", "module")


def group_of(item: pytest.Item) -> str | None:
    """The worker group of `item`: its session-scoped fixture of ours, else the `rasa_core`
    group when marked so, else its module when it uses a module-scoped one of ours, else
    None."""
    info = getattr(item, "_fixtureinfo", None)  # pytest's record of the item's fixtures
    if info is None:
        return None
    scopes: dict[str, str] = {}
    for name, definitions in info.name2fixturedefs.items():
        definition = definitions[-1]  # the one this item gets (the closest override)
        if definition.func.__module__.split(".")[0] == OURS and definition.scope in SHARED_SCOPES:
            scopes[name] = definition.scope
    sessions = sorted(name for name, scope in scopes.items() if scope != "module")
    if sessions:
        return sessions[0]
    if item.get_closest_marker(rasa_core_marker.MARKER) is not None:
        return rasa_core_marker.MARKER
    if scopes:
        return item.nodeid.split("::")[0]
    return None


def assign(items: list[pytest.Item]) -> None:
    """Marks each item with its `xdist_group` and orders `items` as the docstring says."""
    rank: dict[pytest.Item, int] = {}
    for item in items:
        group = group_of(item)
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))
        live = item.get_closest_marker("live") is not None
        rank[item] = (0 if live else 2) + (0 if group else 1)
    items.sort(key=rank.__getitem__)  # stable: the order within each rank is kept
