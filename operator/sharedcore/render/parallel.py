"""The parallel run: the previous system's paths routed to it, and a job comparing both systems' dossiers.

Only at the active site (the standby serves nothing of it; a failover moves it with the rest):
- an `ExternalName` Service naming the previous system's host, and an Ingress for spec.ingress.host whose
  paths (spec.parallelRun.paths, longer prefixes than the service's own `/`, so they win) lead to it. The
  Ingress is written for ingress-nginx: the backend is spoken to over HTTPS with the previous system's own
  host name (`backend-protocol`, `upstream-vhost`), its certificate verified against caSecretName if given.
- a CronJob that every 15 minutes asks both systems how many dossiers in force each holds and which of the
  previous system's are missing from the new one, and writes the answer to the ConfigMap `<name>-parallel-run`
  (rendered empty here: the job owns its data), with a ServiceAccount and a Role that may update that one
  ConfigMap. The operator reads it into status.parallelRun.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from sharedcore.api import Role
from sharedcore.render import names
from sharedcore.render.context import Manifest, RenderContext
from sharedcore.render.network import job_network_policy
from sharedcore.render.workloads import APP_UID, restricted_container

COMPONENT = "parallel-run"
SCHEDULE = "*/15 * * * *"
NGINX = "nginx.ingress.kubernetes.io"
CA_DIR = "/etc/sharedcore/previous-system"


def parallel_run(ctx: RenderContext) -> list[Manifest]:
    run = ctx.service.spec.parallel_run
    if run is None or ctx.site.role is not Role.ACTIVE:
        return []
    return [
        _previous_service(ctx),
        _previous_ingress(ctx),
        _results(ctx),
        ctx.manifest("v1", "ServiceAccount", _job_name(ctx), COMPONENT, automountServiceAccountToken=False),
        _role(ctx),
        _role_binding(ctx),
        _cron_job(ctx),
        # The previous system's API (HTTPS) and the API server (to write the results).
        job_network_policy(ctx, COMPONENT, [443, 6443]),
    ]


def _job_name(ctx: RenderContext) -> str:
    return names.component(ctx.name, COMPONENT)


def _previous_url(ctx: RenderContext) -> tuple[str, int]:
    run = ctx.service.spec.parallel_run
    assert run is not None
    url = urlsplit(run.previous_system.url)
    return str(url.hostname), url.port or 443


def _previous_service(ctx: RenderContext) -> Manifest:
    host, port = _previous_url(ctx)
    spec = {"type": "ExternalName", "externalName": host, "ports": [{"name": "https", "port": port}]}
    return ctx.manifest("v1", "Service", names.previous_system(ctx.name), COMPONENT, spec=spec)


def _previous_ingress(ctx: RenderContext) -> Manifest:
    run, ingress = ctx.service.spec.parallel_run, ctx.service.spec.ingress
    assert run is not None and ingress is not None
    host, port = _previous_url(ctx)
    backend = {"service": {"name": names.previous_system(ctx.name), "port": {"number": port}}}
    spec: dict[str, Any] = {}
    if ingress.class_name is not None:
        spec["ingressClassName"] = ingress.class_name
    if ingress.tls_secret_name is not None:
        spec["tls"] = [{"hosts": [ingress.host], "secretName": ingress.tls_secret_name}]
    paths = [{"path": path, "pathType": "Prefix", "backend": backend} for path in run.paths]
    spec["rules"] = [{"host": ingress.host, "http": {"paths": paths}}]
    annotations = {f"{NGINX}/backend-protocol": "HTTPS", f"{NGINX}/upstream-vhost": host}
    if run.previous_system.ca_secret_name is not None:
        annotations |= {
            f"{NGINX}/proxy-ssl-secret": f"{ctx.namespace}/{run.previous_system.ca_secret_name}",
            f"{NGINX}/proxy-ssl-verify": "on",
            f"{NGINX}/proxy-ssl-name": host,
            f"{NGINX}/proxy-ssl-server-name": "on",
        }
    manifest = ctx.manifest(
        "networking.k8s.io/v1", "Ingress", names.previous_system(ctx.name), COMPONENT, spec=spec
    )
    manifest["metadata"]["annotations"] |= annotations
    return manifest


def _results(ctx: RenderContext) -> Manifest:
    return ctx.manifest("v1", "ConfigMap", names.parallel_run_results(ctx.name), COMPONENT)


def _role(ctx: RenderContext) -> Manifest:
    rules = [
        {
            "apiGroups": [""],
            "resources": ["configmaps"],
            "resourceNames": [names.parallel_run_results(ctx.name)],
            "verbs": ["get", "update", "patch"],
        }
    ]
    return ctx.manifest("rbac.authorization.k8s.io/v1", "Role", _job_name(ctx), COMPONENT, rules=rules)


def _role_binding(ctx: RenderContext) -> Manifest:
    return ctx.manifest(
        "rbac.authorization.k8s.io/v1",
        "RoleBinding",
        _job_name(ctx),
        COMPONENT,
        roleRef={"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": _job_name(ctx)},
        subjects=[{"kind": "ServiceAccount", "name": _job_name(ctx), "namespace": ctx.namespace}],
    )


def _cron_job(ctx: RenderContext) -> Manifest:
    run = ctx.service.spec.parallel_run
    assert run is not None
    web = ctx.profile.web_component
    own_url = f"http://{names.component(ctx.name, web.name)}.{ctx.namespace}.svc:{web.ports[0].port}"
    new_url = run.new_system_url or own_url
    env = [
        {"name": "PREVIOUS_SYSTEM_URL", "value": run.previous_system.url},
        {"name": "NEW_SYSTEM_URL", "value": new_url},
        {"name": "RESULT_CONFIGMAP", "value": names.parallel_run_results(ctx.name)},
        {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
    ]
    volumes: list[dict[str, Any]] = [{"name": "tmp", "emptyDir": {}}]
    mounts: list[dict[str, Any]] = [{"name": "tmp", "mountPath": "/tmp"}]
    if run.previous_system.ca_secret_name is not None:
        secret = {
            "secretName": run.previous_system.ca_secret_name,
            "items": [{"key": "ca.crt", "path": "ca.crt"}],
        }
        volumes.append({"name": "previous-system-ca", "secret": secret})
        mounts.append({"name": "previous-system-ca", "mountPath": CA_DIR, "readOnly": True})
        env.append({"name": "PREVIOUS_SYSTEM_CA", "value": f"{CA_DIR}/ca.crt"})
    container = {
        "name": COMPONENT,
        "image": f"{ctx.service.spec.image or ctx.profile.image}/{COMPONENT}:{ctx.service.spec.version}",
        "imagePullPolicy": "IfNotPresent",
        "env": env,
        "resources": {
            "requests": {"cpu": "50m", "memory": "64Mi"},
            "limits": {"cpu": "500m", "memory": "256Mi"},
        },
        "securityContext": restricted_container(),
        "volumeMounts": mounts,
    }
    pod = {
        "metadata": {"labels": ctx.stable_labels(COMPONENT)},
        "spec": {
            "serviceAccountName": _job_name(ctx),
            "automountServiceAccountToken": True,  # it writes its results through the API
            "restartPolicy": "Never",
            "enableServiceLinks": False,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": APP_UID,
                "runAsGroup": APP_UID,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [container],
            "volumes": volumes,
        },
    }
    spec = {
        "schedule": SCHEDULE,
        "concurrencyPolicy": "Forbid",
        "successfulJobsHistoryLimit": 1,
        "failedJobsHistoryLimit": 3,
        "jobTemplate": {"spec": {"backoffLimit": 1, "activeDeadlineSeconds": 600, "template": pod}},
    }
    return ctx.manifest("batch/v1", "CronJob", _job_name(ctx), COMPONENT, spec=spec)
