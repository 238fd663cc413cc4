"""The sandbox: WhatsApp and Stripe emulated on this machine, with a chat simulator page.

Used by `make sandbox`, by `make run` without WhatsApp/Stripe settings, and by the tests.
The product (actions/, connectors/) never imports it.
"""
