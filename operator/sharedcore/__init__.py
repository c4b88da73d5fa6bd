"""sharedcore: runs a city's shared platforms across two sites and fails them over safely."""

from typing import Any

API_GROUP = "sharedcore.danang.gov.vn"
API_VERSION = "v1alpha1"
# The operator's own namespace: heartbeat Leases, and the only place kubeconfig Secrets may be read from.
SYSTEM_NAMESPACE = "sharedcore-system"
# A Kubernetes object as JSON, as the API server sends it (read through the api models where it matters).
Body = dict[str, Any]
