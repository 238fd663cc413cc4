"""What the Rasa server (`connectors/`) and the action server (`actions/`) agree on.

The two are separate processes that talk over HTTP; this package is the only code both
import: reserved intent, entity and custom-message names, the Flow screens both name, the
flow-token format (minted by the actions, verified by the connector) and the product
catalog. It imports neither side, nor rasa, rasa_sdk or stripe (`.importlinter` checks).
"""
