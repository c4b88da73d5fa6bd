"""A stand-in storage provisioner for planes with workloads: every pending PVC gets a matching PV.

kube-controller-manager then binds them, as it would with a real CSI driver, so pods that mount volumes get
scheduled and kwok can make them Ready. At a site with a real node the volume is a directory under
DIR/<site>/volumes, writable by any pod user, so data survives pod restarts and site outages. Released
volumes are deleted (their directories stay, for a post-mortem).
Run as `python -m sharedcore_testbed.provisioner DIR SITE`.
"""

import json
import sys
import time
import urllib.error
from pathlib import Path
from typing import Any

from sharedcore_testbed import state as testbed_state
from sharedcore_testbed.plane import request

INTERVAL = 1.0


KWOK_VOLUMES = Path("/var/lib/testbed")  # never created: kwok's pods do not run


def volume_for(claim: dict[str, Any], volumes: Path = KWOK_VOLUMES) -> dict[str, Any]:
    meta, spec = claim["metadata"], claim["spec"]
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": f"pvc-{meta['uid']}", "labels": {"testbed.sharedcore/provisioned": "true"}},
        "spec": {
            "capacity": {"storage": spec.get("resources", {}).get("requests", {}).get("storage", "1Gi")},
            "accessModes": spec.get("accessModes", ["ReadWriteOnce"]),
            "storageClassName": spec.get("storageClassName") or "",
            "persistentVolumeReclaimPolicy": "Retain",
            "claimRef": {"namespace": meta["namespace"], "name": meta["name"], "uid": meta["uid"]},
            "hostPath": {"path": str(volumes / meta["uid"])},
        },
    }


def provision_once(root: Path, site: str) -> None:
    plane = testbed_state.load(root).planes[site]

    def call(path: str, body: Any = None, method: str | None = None) -> Any:
        return json.loads(request(root, plane, path, body, method=method, user="provisioner"))

    claims = call("/api/v1/persistentvolumeclaims")["items"]
    provisioned = call("/api/v1/persistentvolumes?labelSelector=testbed.sharedcore%2Fprovisioned")["items"]
    existing = {pv["metadata"]["name"]: pv for pv in provisioned}
    volumes = KWOK_VOLUMES if plane.node_index is None else root / site / "volumes"
    for claim in claims:
        if (
            claim.get("status", {}).get("phase") == "Pending"
            and f"pvc-{claim['metadata']['uid']}" not in existing
        ):
            if plane.node_index is not None:
                directory = volumes / claim["metadata"]["uid"]
                directory.mkdir(parents=True, exist_ok=True)
                directory.chmod(0o777)  # pods run as their own users
            call("/api/v1/persistentvolumes", volume_for(claim, volumes))
    for name, volume in existing.items():
        if volume.get("status", {}).get("phase") == "Released":
            call(f"/api/v1/persistentvolumes/{name}", method="DELETE")


def main(root: Path, site: str) -> None:
    while True:
        try:
            provision_once(root, site)
        except (OSError, urllib.error.URLError, KeyError) as error:
            print(f"provisioner: {error}", flush=True)
        time.sleep(INTERVAL)


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2])
