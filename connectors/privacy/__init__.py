"""Privacy by design: data at rest sealed or pseudonymised, retention, customers' rights.

The stores are re-exported here so that endpoints.yml can name
`connectors.privacy.EncryptedTrackerStore` and `connectors.privacy.PseudonymousRedisLockStore`.
"""

from connectors.privacy.lock_store import PseudonymousRedisLockStore
from connectors.privacy.tracker import EncryptedTrackerStore

__all__ = ["EncryptedTrackerStore", "PseudonymousRedisLockStore"]
