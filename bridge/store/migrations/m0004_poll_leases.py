"""Migration 4: feed polling leases, so several processes share the poller.

A poller claims due blogs by writing ``lease_until`` and ``leased_by``; nobody else polls the
blog until it releases the lease or the lease runs out (its process died).

Released: never edit; add the next number.
"""

from bridge.store.migrations import Migration

MIGRATION = Migration(
    4,
    "feed polling leases",
    """
    ALTER TABLE blogs ADD COLUMN lease_until TEXT;
    ALTER TABLE blogs ADD COLUMN leased_by TEXT;
    """,
    """
    ALTER TABLE blogs ADD COLUMN lease_until TIMESTAMPTZ;
    ALTER TABLE blogs ADD COLUMN leased_by TEXT;
    """,
)
