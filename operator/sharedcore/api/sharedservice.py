"""SharedService: one platform of the city, run at both sites, active at one and standing by at the other."""

from __future__ import annotations

import datetime
import enum
from typing import Annotated, ClassVar, Literal

from pydantic import AwareDatetime, Field, StrictBool, StrictFloat, StrictInt
from pydantic.alias_generators import to_camel

from sharedcore.api.common import (
    Conditions,
    CrdInfo,
    DeletionPolicy,
    Model,
    Platform,
    PrinterColumn,
    Resource,
    Role,
    StandbyMode,
    defaulted,
)
from sharedcore.api.formats import (
    CRON,
    IMAGE_REPOSITORY,
    IMAGE_TAG,
    ISO_DATE,
    LICENSE,
    URL_PATH,
    DnsLabel,
    DnsSubdomain,
    Host,
    HttpsUrl,
    Quantity,
)
from sharedcore.api.validation import AS_SET, Immutable, keyed_by, rule


class Standby(Model):
    """How the standby site is kept."""

    mode: StandbyMode = StandbyMode.WARM
    """Hot runs the whole service at the standby site too, for the fastest takeover. Warm runs one replica of
    each component, so that images are pulled and the configuration proven. Cold runs nothing there but the
    replication of the data."""


class Database(Model):
    """The service's PostgreSQL database, streamed from the active site to the standby."""

    enabled: StrictBool = True
    """Whether the service has a database."""
    instances: StrictInt = Field(default=2, ge=1, le=5)
    """Database instances at the active site: a primary and its replicas."""
    storage: Quantity = "10Gi"
    """Size of each instance's volume, as a Kubernetes quantity such as 10Gi."""
    storage_class_name: DnsSubdomain | None = None
    """StorageClass of the volumes; the cluster's default when unset."""


class Files(Model):
    """The service's shared files (uploads, attachments, recordings), copied to the standby site."""

    enabled: StrictBool = True
    """Whether the service has a shared files volume."""
    size: Quantity = "20Gi"
    """Size of the volume, as a Kubernetes quantity such as 20Gi."""
    storage_class_name: DnsSubdomain | None = None
    """StorageClass of the volume; the cluster's default when unset. It must allow ReadWriteMany."""
    sync_interval_seconds: StrictInt = Field(default=300, ge=60, le=86400)
    """Seconds between two copies of the files to the standby site; files written since the last copy are
    lost if the active site fails."""


class Ingress(Model):
    """How citizens and staff reach the service over HTTPS."""

    host: DnsSubdomain
    """Public host name, e.g. qlvb.danang.gov.vn. DNS points it at the active site."""
    class_name: DnsSubdomain | None = None
    """IngressClass to use; the cluster's default when unset."""
    tls_secret_name: DnsSubdomain | None = None
    """Secret (type kubernetes.io/tls) with the certificate for host, present at both sites."""
    ttl_seconds: StrictInt | None = Field(default=None, ge=1, le=3600)
    """TTL of the host's DNS record: how long resolvers may keep the old site's address after a failover.
    At most objectives.rtoSeconds; the Topology's spec.dns.ttlSeconds (30 by default) when unset."""


class Objectives(Model):
    """Recovery objectives: what a failover may lose and how long it may take. Breaches are reported in the
    status and in alerts; they do not block a failover."""

    rpo_seconds: StrictInt = Field(default=300, ge=0)
    """Recovery point objective: the most recent seconds of data a failover may lose. At least
    files.syncIntervalSeconds when the service has files: they are copied only that often."""
    rto_seconds: StrictInt = Field(default=600, ge=1)
    """Recovery time objective: seconds from the start of a failover until the service answers again."""


class SignatureProvider(enum.StrEnum):
    """Who signs documents digitally."""

    VGCA = "VGCA"
    REMOTE_SIGNING = "RemoteSigning"
    DISABLED = "Disabled"


class PushProvider(enum.StrEnum):
    """A push notification service."""

    FCM = "FCM"
    APNS = "APNs"


class SipTransport(enum.StrEnum):
    """Transport of SIP signalling."""

    UDP = "UDP"
    TCP = "TCP"
    TLS = "TLS"


class DocumentManagementSettings(Model):
    """Settings of the document management and executive system (quản lý văn bản và điều hành)."""

    ocr_workers: StrictInt = Field(default=2, ge=0, le=32)
    """Workers that extract the text of scanned documents; 0 turns OCR off."""
    signature_provider: SignatureProvider = SignatureProvider.VGCA
    """Digital signatures: VGCA (USB tokens of the Government Certification Authority), RemoteSigning (a
    remote signing service) or Disabled."""
    max_upload_megabytes: StrictInt = Field(default=100, ge=1, le=1024)
    """Largest file a user may attach, in megabytes."""
    retention_years: StrictInt = Field(default=10, ge=1, le=100)
    """Years documents are kept before they may be archived."""


class SmartCitySettings(Model):
    """Settings of the Smart City app: citizens' reports and the notifications sent back to their phones."""

    push_workers: StrictInt = Field(default=2, ge=1, le=64)
    """Workers that send push notifications."""
    push_providers: Annotated[list[PushProvider], Field(max_length=2), AS_SET] = Field(
        default=[PushProvider.FCM, PushProvider.APNS]
    )
    """Push services to send through: FCM (Android) and APNs (iOS)."""
    rate_limit_per_minute: StrictInt = Field(default=600, ge=1, le=100000)
    """Requests a single client may make per minute."""


class OpenDataSettings(Model):
    """Settings of the open data portal."""

    harvest_schedule: str = Field(default="0 2 * * *", max_length=128, pattern=CRON)
    """When to harvest the sources, as a five-field cron expression in the site's time zone (numbers, *, -,
    / and , only)."""
    harvest_sources: Annotated[list[HttpsUrl], Field(max_length=64), AS_SET] = Field(default=[])
    """HTTPS catalogues whose datasets the portal harvests."""
    default_license: str = Field(default="CC-BY-4.0", max_length=64, pattern=LICENSE)
    """License of datasets published without one, as an SPDX identifier."""


class OperationsCenterSettings(Model):
    """Settings of the intelligent operations center (IOC)."""

    stream_ingestors: StrictInt = Field(default=2, ge=1, le=64)
    """Workers that ingest the sensor and camera event streams."""
    retention_days: StrictInt = Field(default=90, ge=1, le=3650)
    """Days events are kept."""
    alert_webhook_url: HttpsUrl | None = None
    """HTTPS endpoint that receives alerts; none are sent when unset."""


class SipTrunk(Model):
    """A carrier's SIP trunk that delivers 1022 calls."""

    name: DnsLabel
    """Name of the trunk, unique in the list."""
    host: Host
    """Host name or IPv4 address of the carrier's SIP server."""
    port: StrictInt = Field(default=5060, ge=1, le=65535)
    """Port of the carrier's SIP server."""
    transport: SipTransport = SipTransport.UDP
    """Transport of the signalling: UDP, TCP or TLS."""


class Hotline1022Settings(Model):
    """Settings of the 1022 citizen hotline."""

    sip_trunks: Annotated[list[SipTrunk], Field(min_length=1, max_length=16), keyed_by("name")]
    """The carriers' SIP trunks; at least one."""
    agent_seats: StrictInt = Field(default=30, ge=1, le=1000)
    """Agents who can take calls at the same time."""
    call_recording: StrictBool = True
    """Whether calls are recorded."""
    recording_retention_days: StrictInt = Field(default=365, ge=1, le=3650)
    """Days recordings are kept."""


class EArchiveSettings(Model):
    """Settings of the electronic archive (kho lưu trữ điện tử): the two provinces' digitised records."""

    retention_years: StrictInt | None = Field(default=None, ge=1, le=100)
    """Years records must be kept by law (e.g. 10 or 20); unset means permanently (vĩnh viễn). The platform
    never deletes records: its volumes are retained whatever happens to the SharedService."""
    ingest_workers: StrictInt = Field(default=1, ge=0, le=16)
    """Workers that ingest scanned batches (PDF/A, TIFF) and their metadata, at the active site only; 0
    pauses ingest."""
    read_only_standby: StrictBool = True
    """Whether the standby site serves read-only look-ups from its replica database, so that staff there keep
    reading during a transition."""
    read_only_host: DnsSubdomain | None = None
    """Host name of those read-only look-ups, e.g. tracuu-luutru.danang.gov.vn: DNS points it at the standby
    site. Needs readOnlyStandby and spec.ingress (whose class and certificate it shares)."""

    @rule(
        "!has(self.readOnlyHost) || self.readOnlyStandby",
        message="readOnlyHost needs readOnlyStandby: true (the standby serves that host)",
        field_path=".readOnlyHost",
    )
    def _host_needs_standby(self) -> bool:
        return self.read_only_host is None or self.read_only_standby


class PublicServicePortalSettings(Model):
    """Settings of the public-service portal (cổng dịch vụ công) and the one-stop office (hệ thống một cửa
    điện tử) where staff process the dossiers citizens file."""

    national_portal_sync: StrictBool = True
    """Whether dossiers and their statuses are synchronised with the national public-service portal."""
    dossier_retention_years: StrictInt = Field(default=10, ge=1, le=100)
    """Years a closed dossier is kept before it goes to the archive."""
    processing_workers: StrictInt = Field(default=2, ge=1, le=32)
    """Workers of the one-stop office that route dossiers to the departments and send notifications."""


class PlatformSettings(Model):
    """Settings of the platform: only the member named after spec.platform may be set."""

    document_management: DocumentManagementSettings | None = None
    """Settings for platform DocumentManagement."""
    smart_city: SmartCitySettings | None = None
    """Settings for platform SmartCity."""
    open_data: OpenDataSettings | None = None
    """Settings for platform OpenData."""
    operations_center: OperationsCenterSettings | None = None
    """Settings for platform OperationsCenter."""
    hotline1022: Hotline1022Settings | None = None
    """Settings for platform Hotline1022; required by it."""
    e_archive: EArchiveSettings | None = None
    """Settings for platform EArchive."""
    public_service_portal: PublicServicePortalSettings | None = None
    """Settings for platform PublicServicePortal."""


SETTINGS_FIELDS: dict[Platform, str] = {
    Platform.DOCUMENT_MANAGEMENT: "document_management",
    Platform.SMART_CITY: "smart_city",
    Platform.OPEN_DATA: "open_data",
    Platform.OPERATIONS_CENTER: "operations_center",
    Platform.HOTLINE_1022: "hotline1022",
    Platform.E_ARCHIVE: "e_archive",
    Platform.PUBLIC_SERVICE_PORTAL: "public_service_portal",
}
_SETTINGS_KEYS = {platform: to_camel(name) for platform, name in SETTINGS_FIELDS.items()}


class PreviousSystem(Model):
    """The system a platform replaces, kept running beside it during the parallel run."""

    name: DnsLabel
    """Short name of the previous system, e.g. motcua-quangnam."""
    url: HttpsUrl
    """Base HTTPS URL of its look-up API, e.g. https://motcua.quangnam.gov.vn; the routed paths and the
    reconciliation job's queries go below it."""
    ca_secret_name: DnsSubdomain | None = None
    """Secret in the service's namespace whose key ca.crt is the CA of the previous system's certificate, if
    it is not publicly trusted."""


_MIN_RUN_DAYS, _MAX_RUN_DAYS = 365, 731


class ParallelRun(Model):
    """The period in which the previous system keeps running beside this one, so that dossiers still in force
    can be looked up and processed there and nothing is lost. Its end never deletes anything."""

    previous_system: PreviousSystem
    """The previous system."""
    start_date: str = Field(max_length=10, pattern=ISO_DATE)
    """First day of the parallel run, as YYYY-MM-DD."""
    end_date: str = Field(max_length=10, pattern=ISO_DATE)
    """Last day of the parallel run, as YYYY-MM-DD: one to two years after startDate."""
    new_system_url: HttpsUrl | None = None
    """Look-up API of the new system when it is not this service: a hosted portal the city subscribes to.
    Unset: this service's own web component."""
    paths: Annotated[
        list[Annotated[str, Field(max_length=256, pattern=URL_PATH)]],
        Field(min_length=1, max_length=32),
        AS_SET,
    ]
    """Request paths (prefixes) of spec.ingress.host that go to the previous system, e.g. /tra-cuu/ho-so-cu
    for look-ups by old dossier number."""

    @rule(
        "timestamp(self.endDate + 'T00:00:00Z') - timestamp(self.startDate + 'T00:00:00Z') >= "
        f"duration('{_MIN_RUN_DAYS * 24}h') && timestamp(self.endDate + 'T00:00:00Z') - "
        f"timestamp(self.startDate + 'T00:00:00Z') <= duration('{_MAX_RUN_DAYS * 24}h')",
        message="endDate must be one to two years after startDate",
        field_path=".endDate",
    )
    def _one_to_two_years(self) -> bool:
        days = (
            datetime.date.fromisoformat(self.end_date) - datetime.date.fromisoformat(self.start_date)
        ).days
        return _MIN_RUN_DAYS <= days <= _MAX_RUN_DAYS


def _settings_message(spec: SharedServiceSpec) -> str:
    return f"spec.platform is {spec.platform}: only settings.{_SETTINGS_KEYS[spec.platform]} may be set"


_SETTINGS_KEY_EXPRESSION = "{" + ", ".join(f"'{p}': '{key}'" for p, key in _SETTINGS_KEYS.items()) + "}"


# A typo (1000 for 10) must not ask a site for hundreds of pods of each component.
MAX_REPLICAS = 100


class SharedServiceSpec(Model):
    """The desired state of the service, the same at both sites."""

    platform: Annotated[
        Platform, Immutable("platform is immutable: create another SharedService to run another platform")
    ]
    """Which platform this is, one of the values listed here (each a profile folder of the operator).
    Immutable."""
    version: str = Field(max_length=128, pattern=IMAGE_TAG)
    """Version of the platform: the tag of its images, e.g. 4.2.1."""
    image: str | None = Field(default=None, max_length=255, pattern=IMAGE_REPOSITORY)
    """Image repository, without tag, replacing the platform's own, e.g. for a mirror registry."""
    replicas: StrictInt | None = Field(default=None, ge=1, le=MAX_REPLICAS)
    """Replicas of the serving components at the active site (at most 100); the platform's default when
    unset."""
    standby: Standby = defaulted(Standby)
    """How the standby site is kept."""
    database: Database = defaulted(Database)
    """PostgreSQL, run by CloudNativePG: a cluster at the active site and a replica cluster following it
    at the standby site."""
    files: Files = defaulted(Files)
    """The platform's file store: a volume at each site, copied from the active to the standby site by VolSync
    (rsync over TLS) every syncIntervalSeconds."""
    ingress: Ingress | None = None
    """How the service is reached over HTTPS; not exposed when unset."""
    objectives: Objectives = defaulted(Objectives)
    """Recovery objectives."""
    settings: PlatformSettings = defaulted(PlatformSettings)
    """Settings of the platform, under the key named after spec.platform, e.g. settings.smartCity."""
    parallel_run: ParallelRun | None = None
    """The previous system kept running beside this one for a while: its paths are routed to it at the
    active site, and a job compares the dossiers in force at both."""
    paused: StrictBool = False
    """Stop reconciling the service: the operator leaves its objects as they are until unpaused."""
    deletion_policy: DeletionPolicy = DeletionPolicy.RETAIN
    """When the SharedService is deleted, Retain keeps its volumes and database at both sites; Delete
    removes them at the active site only: a standby or fenced site always keeps its copy, labelled
    sharedcore.danang.gov.vn/retained-copy, until `kubectl sharedcore release-copy` there. An EArchive
    only takes Retain."""

    @rule(
        " && ".join(
            f"(!has(self.settings.{key}) || self.platform == '{platform}')"
            for platform, key in _SETTINGS_KEYS.items()
        ),
        message="only the settings of spec.platform may be set",
        message_expression="'spec.platform is ' + self.platform + ': only settings.' + "
        f"{_SETTINGS_KEY_EXPRESSION}[self.platform] + ' may be set'",
        explain=_settings_message,
        field_path=".settings",
    )
    def _settings_match_platform(self) -> bool:
        return all(
            getattr(self.settings, name) is None
            for platform, name in SETTINGS_FIELDS.items()
            if platform != self.platform
        )

    @rule(
        "!has(self.ingress) || !has(self.ingress.ttlSeconds) "
        "|| self.ingress.ttlSeconds <= self.objectives.rtoSeconds",
        message="ingress.ttlSeconds must not exceed objectives.rtoSeconds: resolvers keep the old address "
        "for a whole TTL after a failover, so a longer TTL alone breaks the recovery time objective",
        field_path=".ingress.ttlSeconds",
    )
    def _ttl_within_rto(self) -> bool:
        ttl = self.ingress.ttl_seconds if self.ingress else None
        return ttl is None or ttl <= self.objectives.rto_seconds

    @rule(
        "self.platform != 'Hotline1022' || has(self.settings.hotline1022)",
        message="platform Hotline1022 requires settings.hotline1022: the hotline needs a SIP trunk",
        field_path=".settings",
        reason="FieldValueRequired",
    )
    def _hotline_has_trunks(self) -> bool:
        return self.platform != Platform.HOTLINE_1022 or self.settings.hotline1022 is not None

    @rule(
        "!self.files.enabled || self.objectives.rpoSeconds >= self.files.syncIntervalSeconds",
        # No figures: string() of a number makes the API server estimate the message's cost far over budget.
        message="objectives.rpoSeconds is shorter than files.syncIntervalSeconds: files written since the "
        "last copy would be lost, so the objective can never hold; raise rpoSeconds or copy the files more "
        "often",
        field_path=".objectives.rpoSeconds",
    )
    def _objective_can_hold(self) -> bool:
        return not self.files.enabled or self.objectives.rpo_seconds >= self.files.sync_interval_seconds

    @rule(
        "!has(self.parallelRun) || has(self.ingress)",
        message="spec.parallelRun needs spec.ingress: the previous system's paths are routed on its host",
        field_path=".parallelRun",
    )
    def _parallel_run_on_ingress(self) -> bool:
        return self.parallel_run is None or self.ingress is not None

    @rule(
        "self.platform != 'EArchive' || self.deletionPolicy == 'Retain'",
        message="an EArchive's records are never deleted by the platform: deletionPolicy must be Retain "
        "(delete its volumes and database yourself once the legal retention allows)",
        field_path=".deletionPolicy",
    )
    def _archive_retains(self) -> bool:
        return self.platform != Platform.E_ARCHIVE or self.deletion_policy is DeletionPolicy.RETAIN

    @rule(
        "!has(self.settings.eArchive) || !has(self.settings.eArchive.readOnlyHost) || "
        "(has(self.ingress) && self.ingress.host != self.settings.eArchive.readOnlyHost)",
        message="settings.eArchive.readOnlyHost needs spec.ingress, with another host",
        field_path=".settings.eArchive.readOnlyHost",
    )
    def _read_only_host_beside_ingress(self) -> bool:
        archive = self.settings.e_archive
        if archive is None or archive.read_only_host is None:
            return True
        return self.ingress is not None and self.ingress.host != archive.read_only_host


class ComponentStatus(Model):
    """A workload of the service at this site."""

    name: str = Field(max_length=253)
    """Name of the component, e.g. api."""
    kind: str = Field(max_length=63)
    """Kind of the workload, e.g. Deployment."""
    replicas: StrictInt = Field(default=0, ge=0)
    """Replicas the workload should run."""
    ready_replicas: StrictInt = Field(default=0, ge=0)
    """Replicas that are ready."""


class ReplicationStatus(Model):
    """How far this site's copy of the data is behind the active site."""

    source_site: DnsLabel | None = None
    """Site the data is copied from; unset at the active site."""
    database_lag_seconds: StrictFloat | None = Field(default=None, ge=0)
    """Seconds of database changes not yet replayed here."""
    database_last_replay_time: AwareDatetime | None = None
    """Commit time of the last database change replayed here."""
    message: str | None = Field(default=None, max_length=32768)
    """Why replication is stopped or behind, when it is."""


class ParallelRunStatus(Model):
    """The parallel run as the active site last checked it."""

    days_left: StrictInt
    """Days until spec.parallelRun.endDate (negative once it has passed: nothing is deleted then)."""
    previous_system_reachable: StrictBool | None = None
    """Whether the reconciliation job reached the previous system at its last run."""
    dossiers_in_force_previous: StrictInt | None = Field(default=None, ge=0)
    """Dossiers still in force at the previous system."""
    dossiers_in_force: StrictInt | None = Field(default=None, ge=0)
    """Dossiers in force in this system."""
    dossiers_missing: StrictInt | None = Field(default=None, ge=0)
    """Dossiers in force at the previous system that this system does not have."""
    last_check_time: AwareDatetime | None = None
    """When the reconciliation job last ran to the end."""


class SharedServiceStatus(Model):
    """The observed state of the service at the site that reports it."""

    observed_generation: StrictInt | None = Field(default=None, ge=0)
    """The .metadata.generation that this status describes."""
    conditions: Conditions = Field(default_factory=list)
    """Conditions of the service, among them Ready."""
    site: DnsLabel | None = None
    """Site this status was written by."""
    role: Role | None = None
    """Role of that site for this service: Active, Standby or Fenced."""
    epoch: StrictInt | None = Field(default=None, ge=0)
    """Failover epoch the role belongs to; it grows with each failover."""
    components: Annotated[list[ComponentStatus], Field(max_length=64), keyed_by("name")] = Field(
        default_factory=list
    )
    """Workloads of the service at the site."""
    replication: ReplicationStatus | None = None
    """Replication of the data to this site."""
    parallel_run: ParallelRunStatus | None = None
    """The parallel run with the previous system, at the active site."""


class SharedService(Resource):
    """A shared platform of the city run at two sites: active at one, standing by at the other, with its
    database and files replicated so that it can fail over."""

    crd: ClassVar[CrdInfo] = CrdInfo(
        plural="sharedservices",
        short_name="shs",
        namespaced=True,
        columns=(
            PrinterColumn("Platform", ".spec.platform"),
            PrinterColumn("Role", ".status.role"),
            PrinterColumn("Ready", '.status.conditions[?(@.type=="Ready")].status'),
            PrinterColumn("Lag", ".status.replication.databaseLagSeconds", "number"),
        ),
    )

    kind: Literal["SharedService"] = "SharedService"
    spec: SharedServiceSpec
    """The desired state of the service."""
    status: SharedServiceStatus | None = None
    """The observed state of the service."""
