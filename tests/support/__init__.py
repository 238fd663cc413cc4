"""Helpers the tests share: clients of the live bot and the sandbox, fixtures that run the
emulators, throw-away databases. Not tests themselves."""
