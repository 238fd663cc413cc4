"""Fakes of the platforms the bot talks to: real HTTP servers on loopback."""
