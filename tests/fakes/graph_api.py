"""The Graph API emulator of the sandbox, under the name the tests know it by."""

from sandbox.graph_api import API_VERSION, GraphApiEmulator, RecordedRequest

FakeGraphApi = GraphApiEmulator

__all__ = ["API_VERSION", "FakeGraphApi", "RecordedRequest"]
