"""Privacy by design: data at rest sealed or pseudonymised, retention, customers' rights.

`EncryptedTrackerStore` is re-exported here so that endpoints.yml can name
`connectors.privacy.EncryptedTrackerStore`.
"""

from connectors.privacy.tracker import EncryptedTrackerStore

__all__ = ["EncryptedTrackerStore"]
