"""Per component: ServiceAccount, Deployment, Service and, when it runs more than one pod, a PDB."""

from __future__ import annotations

from typing import Any

from sharedcore import API_GROUP
from sharedcore.render import names
from sharedcore.render.context import Manifest, RenderContext
from sharedcore.render.profile import Component, Probe
from sharedcore.render.scaling import active_replicas, component_site_replicas

SETTINGS_CHECKSUM_ANNOTATION = f"{API_GROUP}/settings-checksum"
# Every platform image runs as this unprivileged user; fsGroup makes the files volume writable to it.
APP_UID = 10001
SETTINGS_DIR = "/etc/sharedcore/settings"
SITE_DIR = "/etc/sharedcore/site"
POSTGRES_PORT = 5432


def restricted_container() -> dict[str, Any]:
    """A container's securityContext as the restricted Pod Security Standard wants it (a fresh copy)."""
    return {
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }


def replicas(ctx: RenderContext, component: Component) -> int:
    spec = ctx.service.spec
    active = active_replicas(component, spec.replicas, ctx.settings)
    return component_site_replicas(component, active, ctx.site.role, spec.standby.mode, ctx.settings)


def image(ctx: RenderContext, component: Component) -> str:
    """`spec.image` (or the profile's default) is a repository prefix: each component is an image below it."""
    return f"{ctx.service.spec.image or ctx.profile.image}/{component.name}:{ctx.service.spec.version}"


def workloads(ctx: RenderContext, settings_checksum: str) -> list[Manifest]:
    objects: list[Manifest] = []
    for component in ctx.components:
        count = replicas(ctx, component)
        objects.append(service_account(ctx, component))
        objects.append(deployment(ctx, component, count, settings_checksum))
        objects.append(service(ctx, component))
        if count > 1:
            objects.append(disruption_budget(ctx, component))
    return objects


def service_account(ctx: RenderContext, component: Component) -> Manifest:
    name = names.component(ctx.name, component.name)
    return ctx.manifest(
        "v1", "ServiceAccount", name, component.name, by_role=False, automountServiceAccountToken=False
    )


def deployment(ctx: RenderContext, component: Component, count: int, settings_checksum: str) -> Manifest:
    name = names.component(ctx.name, component.name)
    spec = {
        "replicas": count,
        "revisionHistoryLimit": 3,
        "selector": {"matchLabels": ctx.selector(component.name)},
        "strategy": _strategy(ctx, component),
        "template": {
            "metadata": {
                "labels": ctx.stable_labels(component.name),
                "annotations": {SETTINGS_CHECKSUM_ANNOTATION: settings_checksum},
            },
            "spec": _pod_spec(ctx, component, name),
        },
    }
    # Its replicas say what the role makes of it (the same in some standby modes): no role labels.
    return ctx.manifest("apps/v1", "Deployment", name, component.name, by_role=False, spec=spec)


def _mounts_files(ctx: RenderContext, component: Component) -> bool:
    return ctx.service.spec.files.enabled and component.files_mount is not None


def _strategy(ctx: RenderContext, component: Component) -> dict[str, Any]:
    # A ReadWriteOnce volume cannot be attached to the new pod on another node while the old one holds it.
    if _mounts_files(ctx, component) and ctx.profile.files.access_mode == "ReadWriteOnce":
        return {"type": "Recreate"}
    return {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}


def _pod_spec(ctx: RenderContext, component: Component, service_account: str) -> dict[str, Any]:
    volumes: list[dict[str, Any]] = [
        {"name": "tmp", "emptyDir": {}},
        {"name": "settings", "configMap": {"name": names.settings_config(ctx.name)}},
        {"name": "site", "configMap": {"name": names.site_config(ctx.name)}},
    ]
    if _mounts_files(ctx, component):
        volumes.append(
            {"name": "files", "persistentVolumeClaim": {"claimName": names.files_volume(ctx.name)}}
        )
    return {
        "serviceAccountName": service_account,
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": APP_UID,
            "runAsGroup": APP_UID,
            "fsGroup": APP_UID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": "kubernetes.io/hostname",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": ctx.selector(component.name)},
            }
        ],
        "containers": [_container(ctx, component)],
        "volumes": volumes,
    }


def _container(ctx: RenderContext, component: Component) -> dict[str, Any]:
    mounts = [
        {"name": "tmp", "mountPath": "/tmp"},
        {"name": "settings", "mountPath": SETTINGS_DIR, "readOnly": True},
        {"name": "site", "mountPath": SITE_DIR, "readOnly": True},
    ]
    if _mounts_files(ctx, component):
        mounts.append({"name": "files", "mountPath": component.files_mount})
    container: dict[str, Any] = {
        "name": component.name,
        "image": image(ctx, component),
        "imagePullPolicy": "IfNotPresent",
        "ports": [
            {"name": port.name, "containerPort": port.port, "protocol": port.protocol}
            for port in component.ports
        ],
        "env": _env(ctx, component),
        # Site, role and epoch as they were when the container started; SITE_DIR follows changes live.
        "envFrom": [{"configMapRef": {"name": names.site_config(ctx.name)}}],
        "resources": {kind: dict(amounts) for kind, amounts in component.resources.items()},
        **_probes(component.probe),
        "securityContext": restricted_container(),
        "volumeMounts": mounts,
    }
    return container


def _env(ctx: RenderContext, component: Component) -> list[dict[str, Any]]:
    settings = names.settings_config(ctx.name)
    env: list[dict[str, Any]] = [
        {"name": key, "valueFrom": {"configMapKeyRef": {"name": settings, "key": key}}}
        for key in component.env
    ]
    if component.database and ctx.service.spec.database.enabled:
        secret = names.database_app_secret(ctx.name)
        env += [
            {"name": "DATABASE_HOST", "value": names.database_rw_service(ctx.name, ctx.site.name)},
            {"name": "DATABASE_PORT", "value": str(POSTGRES_PORT)},
            {"name": "DATABASE_NAME", "value": ctx.profile.database.name},
            {"name": "DATABASE_USER", "valueFrom": {"secretKeyRef": {"name": secret, "key": "username"}}},
            {"name": "DATABASE_PASSWORD", "valueFrom": {"secretKeyRef": {"name": secret, "key": "password"}}},
        ]
    return env


def _probes(probe: Probe) -> dict[str, Any]:
    def check() -> dict[str, Any]:
        if probe.path is not None:
            return {"httpGet": {"path": probe.path, "port": probe.port}}
        return {"tcpSocket": {"port": probe.port}}

    return {
        # Up to five minutes to start (schema migrations, JVM warm-up) before liveness takes over.
        "startupProbe": {**check(), "periodSeconds": 5, "failureThreshold": 60},
        "readinessProbe": {**check(), "periodSeconds": 10, "failureThreshold": 3},
        "livenessProbe": {**check(), "periodSeconds": 20, "timeoutSeconds": 5, "failureThreshold": 3},
    }


def service(ctx: RenderContext, component: Component) -> Manifest:
    spec: dict[str, Any] = {
        "type": "ClusterIP",
        "selector": ctx.selector(component.name),
        "ports": [
            {"name": port.name, "port": port.port, "targetPort": port.name, "protocol": port.protocol}
            for port in component.ports
        ],
    }
    if component.external:
        # Local keeps the callers' source addresses, which SIP trunks are authorised by.
        spec.update(type="LoadBalancer", externalTrafficPolicy="Local")
    name = names.component(ctx.name, component.name)
    return ctx.manifest("v1", "Service", name, component.name, by_role=False, spec=spec)


def disruption_budget(ctx: RenderContext, component: Component) -> Manifest:
    spec = {"maxUnavailable": 1, "selector": {"matchLabels": ctx.selector(component.name)}}
    name = names.component(ctx.name, component.name)
    return ctx.manifest("policy/v1", "PodDisruptionBudget", name, component.name, by_role=False, spec=spec)
