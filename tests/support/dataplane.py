"""The data-plane double (CloudNativePG, VolSync, Prometheus) for tests: `sharedcore_testbed.dataplane`."""

from sharedcore_testbed.dataplane import (
    CNPG,
    HEALTHY,
    VOLSYNC,
    VOLSYNC_KINDS,
    DataPlaneDouble,
    cnpg_status,
    demotion_token,
    is_primary,
    token_cluster,
    volsync_status,
)

__all__ = [
    "CNPG",
    "HEALTHY",
    "VOLSYNC",
    "VOLSYNC_KINDS",
    "DataPlaneDouble",
    "cnpg_status",
    "demotion_token",
    "is_primary",
    "token_cluster",
    "volsync_status",
]
