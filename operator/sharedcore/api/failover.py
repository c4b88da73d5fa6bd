"""Failover: a request to move every shared service to one site, and the record of how it went."""

from __future__ import annotations

import enum
from typing import Annotated, ClassVar, Literal

from pydantic import AwareDatetime, Field, StrictBool, StrictFloat, StrictInt

from sharedcore.api.common import Conditions, CrdInfo, Model, PrinterColumn, Resource
from sharedcore.api.formats import DnsLabel, DnsSubdomain
from sharedcore.api.validation import Immutable, keyed_by, rule


class FailoverType(enum.StrEnum):
    """Whether the source site takes part."""

    SWITCHOVER = "Switchover"
    FAILOVER = "Failover"


class FailoverPhase(enum.StrEnum):
    """Where a Failover is."""

    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    PLANNED = "Planned"


class StepName(enum.StrEnum):
    """A step of a failover, in the order they run."""

    CHECK_PRECONDITIONS = "CheckPreconditions"
    FENCE_SOURCE = "FenceSource"
    FINAL_SYNC = "FinalSync"
    PROMOTE = "Promote"
    REDIRECT = "Redirect"
    VERIFY = "Verify"


class StepState(enum.StrEnum):
    """Where a step, or a service, is."""

    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    SKIPPED = "Skipped"


class FailoverSpec(Model):
    """What to do; immutable once created."""

    target_site: DnsLabel
    """Site that becomes active."""
    type: FailoverType
    """Switchover: planned, with both sites up; the source is fenced and synced first, so nothing is lost.
    Failover: the source site is down or unreachable; it is fenced where possible and changes not yet
    replicated may be lost."""
    reason: str = Field(min_length=1, max_length=1024)
    """Why, for the record, e.g. a maintenance ticket or an incident."""
    dry_run: StrictBool = False
    """Check the preconditions and plan the steps without changing anything; the Failover ends Planned."""
    accept_data_loss: StrictBool = False
    """Proceed with a Failover even when a service's replication lag exceeds its recovery point objective."""

    @rule(
        "self.type == 'Failover' || !self.acceptDataLoss",
        message="acceptDataLoss applies to type Failover only: a Switchover never loses data",
        field_path=".acceptDataLoss",
    )
    def _data_loss_only_on_failover(self) -> bool:
        return self.type == FailoverType.FAILOVER or not self.accept_data_loss


class StepStatus(Model):
    """How a step went."""

    name: StepName
    """The step."""
    state: StepState = StepState.PENDING
    """Where the step is."""
    start_time: AwareDatetime | None = None
    """When the step started."""
    completion_time: AwareDatetime | None = None
    """When the step ended."""
    message: str | None = Field(default=None, max_length=32768)
    """What the step did or why it failed."""


class ServiceFailoverStatus(Model):
    """How one SharedService fared."""

    namespace: DnsLabel
    """Namespace of the SharedService."""
    name: DnsSubdomain
    """Name of the SharedService."""
    state: StepState = StepState.PENDING
    """Where the service's failover is."""
    data_loss_window_seconds: StrictFloat | None = Field(default=None, ge=0)
    """Seconds of the service's changes that may have been lost."""
    promotion_token: str | None = Field(default=None, max_length=8192)
    """The demotion token CloudNativePG published for the source's database in a switchover, handed to the
    target's database so that it promotes only once it has replayed everything the source wrote."""


# What one Failover moves at most: its status must stay one object the API server can store (etcd takes
# 1.5 MiB per write). Measured at the API server with CloudNativePG-sized promotion tokens and managedFields:
# about 600 bytes per service, 0.72 MB for 1200; names much longer than the samples' cost more.
MAX_FAILOVER_SERVICES = 1200


class FailoverStatus(Model):
    """How the failover went."""

    phase: FailoverPhase | None = None
    """Pending, Running, Succeeded, Failed, or Planned for a dry run."""
    from_site: DnsLabel | None = None
    """Site that was active."""
    to_site: DnsLabel | None = None
    """Site that became active."""
    from_epoch: StrictInt | None = Field(default=None, ge=0)
    """Failover epoch before."""
    to_epoch: StrictInt | None = Field(default=None, ge=0)
    """Failover epoch after."""
    steps: Annotated[list[StepStatus], Field(max_length=16), keyed_by("name")] = Field(default_factory=list)
    """The steps, in order."""
    services: Annotated[
        list[ServiceFailoverStatus], Field(max_length=MAX_FAILOVER_SERVICES), keyed_by("namespace", "name")
    ] = Field(default_factory=list)
    """Each SharedService moved."""
    start_time: AwareDatetime | None = None
    """When the failover started."""
    completion_time: AwareDatetime | None = None
    """When the failover ended."""
    source_last_seen_time: AwareDatetime | None = None
    """Until when the source may have taken writes, as the target saw it when the failover started: the start
    itself while the source still answered; else its last sight as Active plus the time it may have gone on
    acting unseen before fencing itself (at most a lease). The data-loss window reaches back from here."""
    source_last_active_time: AwareDatetime | None = None
    """When the target last saw the source Active (a heartbeat as Active, or its renewal of the witness
    Lease), as it saw it when the failover started: the start itself while the source still answered; unset
    if it never saw it. A failover's RTO counts from here."""
    rto_seconds: StrictFloat | None = Field(default=None, ge=0)
    """Recovery time: seconds from when the services stopped answering at the source (a failover: the
    target's last sight of the source Active, so detection counts; a switchover: the start of its fencing)
    until every service answered at the target. Unset when that start is unknown."""
    data_loss_window_seconds: StrictFloat | None = Field(default=None, ge=0)
    """Seconds of changes that may have been lost, at worst over all services."""
    fencing_seconds: StrictFloat | None = Field(default=None, ge=0)
    """Seconds FenceSource took: from the handover's announcement until the source stopped acting and, where
    it could still be asked, its databases reported demoted and its DNS records were withdrawn."""
    conditions: Conditions = Field(default_factory=list)
    """Conditions of the failover."""
    message: str | None = Field(default=None, max_length=32768)
    """Human-readable summary of the outcome, or of why it failed."""


class Failover(Resource):
    """A request to make one site active for every shared service, and the record of how it went. The spec is
    immutable: create another Failover to try again."""

    crd: ClassVar[CrdInfo] = CrdInfo(
        plural="failovers",
        short_name="fo",
        namespaced=False,
        columns=(
            PrinterColumn("Type", ".spec.type"),
            PrinterColumn("Target", ".spec.targetSite"),
            PrinterColumn("Phase", ".status.phase"),
            PrinterColumn("RTO", ".status.rtoSeconds", "number"),
        ),
    )

    kind: Literal["Failover"] = "Failover"
    spec: Annotated[
        FailoverSpec, Immutable("the Failover spec is immutable: create another Failover instead")
    ]
    """What to do; immutable."""
    status: FailoverStatus | None = None
    """How it went."""
