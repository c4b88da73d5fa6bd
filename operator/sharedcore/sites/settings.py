"""The failover settings both sites must agree on, as each site publishes them in its heartbeats.

Each site's Topology is applied separately, so during a rollout (or by mistake) the two may differ. No such
difference may make both sites active: durations are judged by the most conservative of the two sites' (see
`sites.witness`, `failover.triggers`); a difference is reported (the `SettingsMatch` condition, an Event, a
metric) so that people make the Topologies agree again.
"""

import hashlib
from dataclasses import dataclass, fields

from sharedcore.api import Topology


@dataclass(frozen=True)
class FailoverSettings:
    mode: str
    heartbeat: int  # seconds
    lease: int  # seconds
    witness: bool
    preferred: str
    accept_split_brain_risk: bool = False

    @classmethod
    def of(cls, topology: Topology) -> "FailoverSettings":
        policy = topology.spec.failover
        return cls(
            mode=str(policy.mode),
            heartbeat=policy.heartbeat_interval_seconds,
            lease=policy.lease_duration_seconds,
            witness=topology.spec.witness is not None,
            preferred=topology.spec.preferred_primary,
            accept_split_brain_risk=bool(policy.accept_split_brain_risk),
        )

    def encode(self) -> str:
        """The settings as a heartbeat annotation carries them."""
        return ",".join(f"{_NAMES[f.name]}={_text(getattr(self, f.name))}" for f in fields(self))

    @classmethod
    def decode(cls, text: str | None) -> "FailoverSettings | None":
        """The settings from a heartbeat; None when missing or unreadable (another version's heartbeat)."""
        try:
            values = dict(item.split("=", 1) for item in (text or "").split(","))
            by_name = {name: values[encoded] for name, encoded in _NAMES.items()}
            return cls(
                mode=by_name["mode"],
                heartbeat=int(by_name["heartbeat"]),
                lease=int(by_name["lease"]),
                witness=by_name["witness"] == "true",
                preferred=by_name["preferred"],
                accept_split_brain_risk=by_name["accept_split_brain_risk"] == "true",
            )
        except (KeyError, ValueError):
            return None

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.encode().encode()).hexdigest()[:16]

    def differences(self, peer: "FailoverSettings") -> list[str]:
        """What differs, in the Topology's words: `<field> <ours> here, <theirs> at the peer`."""
        pairs = [(f.name, getattr(self, f.name), getattr(peer, f.name)) for f in fields(self)]
        return [
            f"{_NAMES[name]} {_text(ours)} here, {_text(theirs)} at the peer"
            for name, ours, theirs in pairs
            if ours != theirs
        ]


_NAMES = {
    "mode": "mode",
    "heartbeat": "heartbeatIntervalSeconds",
    "lease": "leaseDurationSeconds",
    "witness": "witness",
    "preferred": "preferredPrimary",
    "accept_split_brain_risk": "acceptSplitBrainRisk",
}


def _text(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)
