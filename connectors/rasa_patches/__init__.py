"""Patches of Rasa's private internals, one module each; `install.install()` applies them.

Nothing here changes Rasa at import time: the WhatsApp channel installs the patches from
`WhatsAppInput.from_credentials`, and only on the Rasa version they were written for.
"""
