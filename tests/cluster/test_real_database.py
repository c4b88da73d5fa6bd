"""A service's PostgreSQL for real: CloudNativePG at both real-node sites, the operator provisioning what both
sites' Clusters share, the standby's replica streaming from the active site across the inter-site link.

One pair and one SharedService serve every test of the module (the tests run in order and build on each
other's end state: that keeps the real-node time small)."""

import json
import signal
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from sharedcore.replication import demotion
from sharedcore_testbed import cnpg, operators
from sharedcore_testbed import pair as two_sites
from sharedcore_testbed.clients import as_object
from sharedcore_testbed.nemesis import REAL_BOUNDS, Nemesis, summary
from sharedcore_testbed.operators import metric
from sharedcore_testbed.targets import ServiceDatabase
from sharedcore_testbed.traffic import Move, Traffic
from tests.cluster.test_failover import ended, request
from tests.conftest import Sites
from tests.support import samples
from tests.support.cluster import Site, eventually
from tests.support.operator import CRD_DIRS

# The first real-node test of a session also starts the real sites (and their images' containerd template).
pytestmark = [pytest.mark.cluster, pytest.mark.nodes, pytest.mark.timeout(900)]

SERVICE = "opendata"
DATABASE = "ckan"  # the OpenData profile's database (and its owner)
CNPG = ("postgresql.cnpg.io", "v1", "clusters")
FAILOVERS = ("sharedcore.danang.gov.vn", "v1alpha1", "failovers")
TOPOLOGY = ("sharedcore.danang.gov.vn", "v1alpha1", "topologies", "default")
HEALTHY = "ReplicationHealthy"


@dataclass
class Database:
    pair: two_sites.Pair[Site]
    namespace: str

    def cluster(self, site: Site) -> dict[str, Any]:
        name = f"{SERVICE}-db-{site.name}"
        return as_object(site.custom.get_namespaced_custom_object(*CNPG[:2], self.namespace, CNPG[2], name))

    def primary_pod(self, site: Site) -> str:
        return str(self.cluster(site)["status"]["currentPrimary"])

    def sql(self, site: Site, statement: str) -> str:
        """Run SQL at the site's primary instance, again while it does not accept connections (an instance
        restarting, or one just made a primary and still starting)."""

        def attempt() -> list[str] | None:  # (a list: an empty answer is an answer)
            pod = self.primary_pod(site)
            try:
                return [cnpg.psql(site.kubeconfig, self.namespace, pod, statement, DATABASE)]
            except RuntimeError as error:
                if "exit code 2" not in str(error):  # psql's "cannot connect"; any other error is the test's
                    raise
                return None

        return eventually(attempt, timeout=240, interval=1, message=f"SQL at {site.name}")[0]


def _service_at(site: Site, database: Database) -> dict[str, Any]:
    return as_object(
        site.custom.get_namespaced_custom_object(
            "sharedcore.danang.gov.vn", "v1alpha1", database.namespace, "sharedservices", SERVICE
        )
    )


def _condition(site: Site, database: Database, kind: str) -> dict[str, Any]:
    service = _service_at(site, database)
    found: dict[str, Any] = next(
        (c for c in (service.get("status") or {}).get("conditions", []) if c["type"] == kind), {}
    )
    return found


def _healthy(site: Site, database: Database) -> dict[str, Any] | None:
    try:
        cluster = database.cluster(site)
    except Exception:  # not created yet
        return None
    status = cluster.get("status") or {}
    return cluster if status.get("phase") == "Cluster in healthy state" else None


@pytest.fixture(scope="module")
def database(real_sites: Sites, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    """CloudNativePG installed at danang and quangnam from its release manifest, both operators (Automatic
    mode) reading lag from their site's Prometheus, and an OpenData service with a one-instance database
    created at danang."""
    danang, quangnam, witness = real_sites.danang, real_sites.quangnam, real_sites.witness
    for site in (danang, quangnam):
        cnpg.install(site.kubeconfig)
    directory = tmp_path_factory.mktemp("database")
    pair = two_sites.prepare_pair(
        danang,
        quangnam,
        witness,
        directory,
        crds=CRD_DIRS,
        topology=two_sites.topology(mode="Automatic", heartbeat=2, lease=15),
        resync=5,
        prometheus={site.name: real_sites.bed.prometheus_url(site.name) for site in (danang, quangnam)},
    )
    namespace = f"t-db-{uuid.uuid4().hex[:6]}"
    with pair.running():
        for site in (danang, quangnam):
            two_sites.opt_in(site, namespace)
        body = samples.service(
            "open-data",
            namespace,
            version="1.0.0",
            replicas=1,
            database={"instances": 1, "storage": "1Gi"},
            files={"enabled": False},
        )
        danang.custom.create_namespaced_custom_object(
            "sharedcore.danang.gov.vn", "v1alpha1", namespace, "sharedservices", body
        )
        yield Database(pair, namespace)
        for site in (danang, quangnam):
            site.kubectl("delete", "namespace", namespace, "--wait=false", check=False)
    for site in (danang, quangnam):
        # The planes outlive this module: later modules find no CloudNativePG running (its CRDs stay), and no
        # operator account of the process operators in the way of the chart's.
        operators.remove_service_account(site.kubeconfig)
        cnpg.uninstall(site.kubeconfig)


def test_the_standby_streams_the_active_sites_database(database: Database) -> None:
    danang, quangnam = database.pair.danang, database.pair.quangnam
    start = time.monotonic()
    eventually(lambda: _healthy(danang, database), timeout=240, message="danang's Cluster healthy")
    healthy_at = time.monotonic() - start
    database.sql(danang, "CREATE TABLE probe (id int PRIMARY KEY, note text)")
    database.sql(danang, "INSERT INTO probe VALUES (1, 'written at danang')")
    replica = eventually(lambda: _healthy(quangnam, database), timeout=240, message="quangnam's replica")
    streaming_at = time.monotonic() - start
    assert replica["spec"]["replica"]["primary"] == f"{SERVICE}-db-danang"

    def row() -> str | None:
        try:
            return database.sql(quangnam, "SELECT note FROM probe WHERE id = 1") or None
        except RuntimeError:  # the table has not arrived yet
            return None

    assert eventually(row, timeout=60, message="the row at quangnam") == "written at danang"
    # Its lag, measured by quangnam's Prometheus from the instance's own metric, is what a failover's
    # data-loss window will come from.
    eventually(
        lambda: _condition(quangnam, database, "ReplicationHealthy").get("status") == "True",
        timeout=120,
        message="quangnam's replication measured healthy",
    )
    receiver = database.sql(quangnam, "SELECT status, sender_host FROM pg_stat_wal_receiver")
    assert receiver == f"streaming|{SERVICE}-db-danang-rw.{database.namespace}.svc.clusterset.local"
    print(f"danang healthy after {healthy_at:.0f}s, quangnam streaming after {streaming_at:.0f}s")

    # A partition of the link stops the streaming for real; healing it resumes it.
    bed = danang.bed
    bed.partition("danang", "quangnam")
    try:
        database.sql(danang, "INSERT INTO probe VALUES (2, 'written during a partition')")
        eventually(
            lambda: (
                database.sql(quangnam, "SELECT count(*) FROM pg_stat_wal_receiver WHERE status = 'streaming'")
                == "0"
            ),
            timeout=60,
            message="quangnam's WAL receiver cut off",
        )
        assert database.sql(quangnam, "SELECT count(*) FROM probe WHERE id = 2") == "0"
    finally:
        bed.heal("danang", "quangnam")
    eventually(
        lambda: database.sql(quangnam, "SELECT count(*) FROM probe WHERE id = 2") == "1",
        timeout=90,
        message="the row written during the partition at quangnam after healing",
    )


# --- Under continuous writes (sharedcore_testbed.traffic): what each move costs, counted from the data


@pytest.fixture(scope="module")
def traffic(database: Database) -> Iterator[Traffic]:
    """For the rest of the module: a client writing a numbered row every 20 ms wherever the service's DNS
    record points, and pg_is_in_recovery() sampled at both sites every 100 ms (never two writable)."""
    sites = {site.name: site for site in database.pair.sites}
    located = ServiceDatabase(sites, database.namespace, SERVICE, ingress=two_sites.ADDRESSES)
    with Traffic(located) as writes:
        writes.writing_at("danang", timeout=240)
        yield writes
    assert writes.sampler.two_writable() == [], "two writable primaries in one 100 ms tick"


def _moved(traffic: Traffic, target: Site, status: dict[str, Any], since: float) -> Move:
    """The checker's count once the writer writes at `target`; printed beside what sharedcore recorded."""
    move = traffic.after_move(status, primary=target.name, since=since)
    print(f"to {target.name}: {move.figures()}; {move.report.summary()}")
    assert move.report.at_two_primaries == (), move.report.at_two_primaries
    assert traffic.sampler.two_writable() == [], traffic.sampler.two_writable()
    return move


def _identity(site: Site, database: Database) -> tuple[str, str, str]:
    """What a new base backup would change: the instance, its volume, and the data directory's system id."""
    pod = database.primary_pod(site)
    volume = site.core.read_namespaced_persistent_volume_claim(pod, database.namespace).metadata.uid
    system = database.sql(site, "SELECT system_identifier FROM pg_control_system()")
    return pod, volume, system


def _request_switchover(source: Site, target: Site) -> tuple[str, float]:
    """The Failover's name, and when it was requested."""
    # A switchover needs both sites: after a partition, wait until the target sees the source again
    # (requested at once, it failed with SourceUnreachable in two fresh-clone CI runs).
    eventually(
        lambda: two_sites.site_entry(target, source.name).get("reachable") is True,
        timeout=60,
        message=f"{target.name} reaches {source.name}",
    )
    since = time.time()
    return request(target, target.name, "Switchover"), since


def _switchover(database: Database, traffic: Traffic, source: Site, target: Site) -> None:
    """A Switchover to `target` under the writer: no acknowledged row lost; the source's demotion token is the
    target's promotion token; the source's instance then streams from the target, on its own volume (no base
    backup); a row written at the target arrives there."""
    before = _identity(source, database)
    name, since = _request_switchover(source, target)
    status = ended(target, name, timeout=180)
    assert status["phase"] == "Succeeded", (status.get("phase"), status.get("message"))
    move = _moved(traffic, target, status, since)
    assert move.lost == 0 and move.report.missing == (), move.report.summary()
    last, first = move.report.last_before, move.report.first_after
    assert last is not None and last.site == source.name, move.report
    assert first is not None and first.site == target.name, move.report
    token = database.cluster(source)["status"]["demotionToken"]
    # The Promote step passed only once the target's Cluster reported lastPromotionToken equal to the token it
    # recorded; once the Failover ends the token is withdrawn from the spec, and CloudNativePG's status may no
    # longer show it. The handshake's proof here: the recorded token is the source's demotion token, and the
    # old primary streams from the new one on its own volume (a promotion without it forks the timeline).
    assert token and status["services"][0]["promotionToken"] == token, (token, status.get("services"))
    assert database.sql(target, "SELECT pg_is_in_recovery()") == "f"
    # No WAL archiving (cnpg.io/skipWalArchiving): nothing for CloudNativePG to restart the new primary for.
    assert database.sql(target, "SHOW archive_mode") == "off"
    host = f"{SERVICE}-db-{target.name}-rw.{database.namespace}.svc.clusterset.local"
    eventually(
        lambda: (
            database.sql(source, "SELECT status, sender_host FROM pg_stat_wal_receiver")
            == f"streaming|{host}"
        ),
        timeout=60,
        message=f"{source.name} streaming from {target.name}",
    )
    assert _identity(source, database) == before, "the old primary kept its instance, volume and data"
    row = uuid.uuid4().hex
    database.sql(target, f"INSERT INTO probe VALUES ((SELECT max(id) + 1 FROM probe), '{row}')")
    eventually(
        lambda: database.sql(source, f"SELECT count(*) FROM probe WHERE note = '{row}'") == "1",
        timeout=30,
        message=f"the row written at {target.name} at {source.name}",
    )


def test_a_switchover_under_writes_hands_the_database_over_by_token_losing_nothing_and_back(
    database: Database, traffic: Traffic
) -> None:
    danang, quangnam = database.pair.danang, database.pair.quangnam
    _switchover(database, traffic, danang, quangnam)
    _switchover(database, traffic, quangnam, danang)


def _replicating(site: Site, database: Database, message: str, timeout: float = 120) -> None:
    """Until ReplicationHealthy is True at `site` (else fail with the condition last seen)."""
    seen: dict[str, Any] = {}

    def healthy() -> bool:
        seen.clear()
        seen.update(_condition(site, database, HEALTHY))
        return seen.get("status") == "True"

    try:
        eventually(healthy, timeout=timeout, message=message)
    except AssertionError as error:
        raise AssertionError(f"{error}; ReplicationHealthy: {seen}") from None


def _failovers(site: Site) -> set[str]:
    return {
        f["metadata"]["name"] for f in as_object(site.custom.list_cluster_custom_object(*FAILOVERS))["items"]
    }


def _cnpg_metric(site: Site, series: str) -> float | None:
    """A CloudNativePG instance metric of the site's replica, as its Prometheus has it."""
    url = site.bed.prometheus_url(site.name)
    with urllib.request.urlopen(f"{url}/api/v1/query?query={series}", timeout=5) as response:
        found = json.loads(response.read())["data"]["result"]
    ours = [r for r in found if r["metric"].get("pod", "").startswith(f"{SERVICE}-db-{site.name}-")]
    return float(ours[0]["value"][1]) if ours else None


def test_a_partition_under_writes_raises_the_lag_past_the_rpo_and_promotes_nothing(
    database: Database, traffic: Traffic
) -> None:
    quangnam = database.pair.quangnam
    rpo = 10  # the sample's hour would make the test wait an hour
    sample_rpo = _set_rpo(database, rpo)
    _replicating(quangnam, database, "quangnam replicating")
    failovers = _failovers(quangnam)
    lag = ("sharedcore_replication_lag_seconds", {"namespace": database.namespace, "name": SERVICE})
    operator = database.pair.operators["quangnam"]
    quangnam.bed.partition("danang", "quangnam")
    try:
        eventually(  # once PostgreSQL's wal_receiver_timeout has passed
            lambda: _cnpg_metric(quangnam, "cnpg_pg_replication_is_wal_receiver_up") == 0.0,
            timeout=120,
            message="quangnam's Prometheus: the replica's WAL receiver down",
        )
        condition = eventually(
            lambda: (
                (c := _condition(quangnam, database, "ReplicationHealthy")).get("status") == "False" and c
            ),
            timeout=60,
            message="ReplicationHealthy False at quangnam",
        )
        past = eventually(
            lambda: (v := metric(operator, lag[0], **lag[1], kind="database")) is not None and v > rpo and v,
            timeout=60,
            message=f"the database lag past the RPO ({rpo} s) in quangnam's metrics",
        )
        print(f"partitioned: {condition['reason']}: {condition['message']}; lag {past:.0f} s")
        traffic.writing_at("danang")  # the active site goes on taking writes
        assert database.sql(quangnam, "SELECT pg_is_in_recovery()") == "t"
    finally:
        quangnam.bed.heal("danang", "quangnam")
    assert _failovers(quangnam) == failovers, "nothing promotes on a partition between the sites"
    # The replica's connection attempts during the cut were black-holed: TCP's backoff says when it retries.
    _replicating(quangnam, database, "quangnam replicating again once healed", timeout=240)
    eventually(
        lambda: (v := _cnpg_metric(quangnam, "cnpg_pg_replication_lag")) is not None and v < 2,
        timeout=60,
        message="the lag near zero again in quangnam's Prometheus",
    )
    eventually(
        lambda: (v := metric(operator, lag[0], **lag[1], kind="database")) is not None and v < 2,
        timeout=60,
        message="the lag near zero again in quangnam's metrics",
    )
    assert traffic.sampler.two_writable() == []
    _set_rpo(database, sample_rpo)


def _set_rpo(database: Database, rpo: int) -> int:
    """Set the service's rpoSeconds at danang; return the one it had once quangnam has the new one."""
    danang, quangnam = database.pair.danang, database.pair.quangnam
    before = int(_service_at(danang, database)["spec"]["objectives"]["rpoSeconds"])
    patch = {"spec": {"objectives": {"rpoSeconds": rpo}}}
    danang.custom.patch_namespaced_custom_object(
        *FAILOVERS[:2], database.namespace, "sharedservices", SERVICE, patch
    )
    eventually(
        lambda: _service_at(quangnam, database)["spec"]["objectives"]["rpoSeconds"] == rpo,
        message=f"rpoSeconds {rpo} replicated to quangnam",
    )
    return before


def _failover(site: Site, name: str) -> dict[str, Any] | None:
    try:
        return as_object(site.custom.get_cluster_custom_object(*FAILOVERS, name))
    except client.ApiException:
        return None


def _volume_dir(site: Site, namespace: str, claim: str) -> Path:
    """The directory behind a claim's volume (the testbed's volumes are directories on this machine)."""
    volume = site.core.read_namespaced_persistent_volume_claim(claim, namespace).spec.volume_name
    return Path(site.core.read_persistent_volume(volume).spec.host_path.path)


def _holds(directory: Path, text: str) -> bool:
    """Whether PostgreSQL's data files under `directory` hold `text` (a short row is stored as it is)."""
    needle = text.encode()
    return any(needle in path.read_bytes() for path in directory.rglob("*") if path.is_file())


def test_a_lost_site_under_writes_fails_over_losing_only_its_recorded_window_and_keeps_its_data(
    database: Database, traffic: Traffic
) -> None:
    """danang, cut off from quangnam (not from its witness), goes on taking writes that quangnam never gets,
    then is lost. quangnam fails over by itself, promoted from what it has; every acknowledged write lost was
    acknowledged inside the data-loss window it recorded, and every write acknowledged after the cut is among
    them. When danang returns its database follows quangnam's, copied anew because
    it diverged, its old volume kept under a claim of its own with the lost rows in it. Whatever fails, danang
    is started and the link healed again: the later real-node modules need the pair."""
    danang, quangnam, bed = database.pair.danang, database.pair.quangnam, database.pair.danang.bed
    namespace = database.namespace
    lost, after = f"lost-{uuid.uuid4().hex}", f"after-{uuid.uuid4().hex}"
    # Steady state first: quangnam has measured its replica since it became one again (else the window is
    # unknown and the automatic failover refused, as it must be).
    _replicating(quangnam, database, "quangnam's replication measured healthy")
    traffic.baseline(primary="danang")  # what earlier moves lost is theirs
    epoch = int(quangnam.custom.get_cluster_custom_object(*TOPOLOGY)["status"]["epoch"])
    stopped = False
    bed.partition("danang", "quangnam")
    try:
        # Every write acknowledged after the cut is lost: the cut drops what danang sends from then on, its
        # kernel's last FIN included (tests/cluster/test_wan_cut.py; before, that FIN carried the walsender's
        # unacknowledged WAL to quangnam when danang was stopped). So no need to wait for quangnam's WAL
        # receiver to notice the cut (wal_receiver_timeout) before the writes that must be lost: waiting for
        # it only hid that leak (a receiver that has gone drops what arrives late).
        cut = time.time()
        database.sql(danang, f"INSERT INTO probe VALUES ((SELECT max(id) + 1 FROM probe), '{lost}')")
        traffic.writing_at("danang", count=100)
        database.sql(danang, "CHECKPOINT")  # the rows in danang's data files, where the check below looks
        old_volume = _volume_dir(danang, namespace, database.primary_pod(danang))
        since = time.time()
        database.pair.operators["danang"].stop(signal.SIGKILL)  # it runs at that site: lost with it
        danang.stop()
        stopped = True
        # The link stays cut until quangnam has promoted: danang's network namespace outlives its processes,
        # and its kernel goes on retransmitting what the killed walsender had sent, which a receiver still
        # waiting would take (a lost site's kernel dies with it).
        name = f"automatic-failover-epoch-{epoch + 1}"
        eventually(lambda: _failover(quangnam, name), timeout=120, message=f"quangnam's {name}", interval=1)
        status = ended(quangnam, name, timeout=180)
        assert status["phase"] == "Succeeded", json.dumps(status, indent=1)
        # Promoted without a token, the Cluster is Promote's once told so: PostgreSQL's own promotion may end
        # seconds after the Failover (README, "Real PostgreSQL under writes").
        succeeded = time.monotonic()
        eventually(
            lambda: database.sql(quangnam, "SELECT pg_is_in_recovery()") == "f",
            timeout=60,
            interval=0.2,
            message="quangnam's database writable",
        )
        print(f"quangnam's database writable {time.monotonic() - succeeded:.1f}s after the Failover ended")
        assert database.sql(quangnam, f"SELECT count(*) FROM probe WHERE note = '{lost}'") == "0"
        move = _moved(traffic, quangnam, status, since)
        # (A second's margin: a commit made just before the cut may reach the writer's thread a moment late.)
        after_cut = [a.seq for a in traffic.writer.acks if a.site == "danang" and a.at > cut + 1]
        assert after_cut and set(after_cut) <= set(move.report.missing), (
            "written after the cut, yet at quangnam"
        )
        # Against what sharedcore recorded: no acknowledged write lost from before the window.
        assert move.window_recorded is not None and move.outside_window == 0, (
            f"{move.lost} acknowledged rows lost, {move.outside_window} of them acknowledged before the "
            f"recorded data-loss window of {move.window_recorded} s"
        )
        database.sql(quangnam, f"INSERT INTO probe VALUES ((SELECT max(id) + 1 FROM probe), '{after}')")
    finally:
        bed.heal("danang", "quangnam")
        returned = time.monotonic()
        if stopped:
            danang.start()
            database.pair.operators["danang"].start()

    _follows_again_with_its_data_kept(database, old_volume, lost, after, returned)


def _follows_again_with_its_data_kept(
    database: Database, old_volume: Path, lost: str, after: str, returned: float
) -> None:
    """danang, back, follows quangnam: copied anew on a new volume, its old one kept under a claim of its own
    with the row quangnam never got."""
    danang, namespace, own = database.pair.danang, database.namespace, f"{SERVICE}-db-danang"

    def rebuilt() -> bool:
        cluster = _healthy(danang, database)
        if cluster is None or cluster["metadata"]["labels"].get("sharedcore.danang.gov.vn/role") != "Standby":
            return False
        try:
            return database.sql(danang, f"SELECT count(*) FROM probe WHERE note = '{after}'") == "1"
        except RuntimeError:
            return False

    eventually(rebuilt, timeout=300, interval=2, message="danang's database copied anew from quangnam")
    following = time.monotonic() - returned
    host = f"{SERVICE}-db-quangnam-rw.{namespace}.svc.clusterset.local"
    assert database.sql(danang, "SELECT status, sender_host FROM pg_stat_wal_receiver") == f"streaming|{host}"
    assert database.sql(danang, f"SELECT count(*) FROM probe WHERE note = '{lost}'") == "0"
    new_volume = _volume_dir(danang, namespace, database.primary_pod(danang))
    assert new_volume != old_volume, "a new copy, on a new volume"
    copied = sum(path.stat().st_size for path in new_volume.rglob("*") if path.is_file())
    claims = [
        c.metadata.name
        for c in danang.core.list_namespaced_persistent_volume_claim(namespace).items
        if c.metadata.name.startswith(f"{own}-1-diverged-")
    ]
    assert len(claims) == 1, claims
    assert _volume_dir(danang, namespace, claims[0]) == old_volume, "the old volume, under a claim of its own"
    assert _holds(old_volume, lost), "danang's diverged data is kept"
    events = danang.core.list_namespaced_event(namespace, field_selector="reason=DatabaseDiverged").items
    assert events and claims[0] in events[0].message
    print(f"danang following again {following:.0f}s after its return, {copied / 2**20:.0f} MiB copied")
    _replicating(danang, database, "danang replicating from quangnam")


def _active_site(database: Database) -> Site:
    active = two_sites.topology_status(database.pair.danang)["activeSite"]
    return next(site for site in database.pair.sites if site.name == active)


def test_a_switchover_withdrawn_while_its_source_site_is_lost_mid_demotion_leaves_the_source_writable(
    database: Database, traffic: Traffic
) -> None:
    """The nemesis's find (seed 26): a switchover whose source site is lost (every process killed) while
    CloudNativePG demotes its Cluster, then deleted before anything was promoted. The source, back, is the
    active site again (nothing moved), and its database must be writable again, the peer following it, no
    acknowledged write lost. Left to CloudNativePG, a demotion its site's loss interrupted may never end (its
    instance's report lost, or its shutdown unclean), and CloudNativePG refuses the Cluster back as primary
    meanwhile (replication.demotion)."""
    source = _active_site(database)
    target = next(site for site in database.pair.sites if site is not source)
    _replicating(target, database, f"{target.name} replicating from {source.name}")
    traffic.baseline(primary=source.name)
    name, since = _request_switchover(source, target)
    eventually(
        lambda: demotion.in_progress(database.cluster(source)),
        timeout=120,
        interval=0.1,
        message=f"CloudNativePG demoting {source.name}'s Cluster",
    )
    operator = database.pair.operators[source.name]
    operator.stop(signal.SIGKILL)
    source.stop()
    try:
        target.custom.delete_cluster_custom_object(*FAILOVERS, name)
        time.sleep(6)
    finally:
        source.start()
        operator.start()
    returned = time.monotonic()

    def writable() -> bool:
        try:
            return database.sql(source, "SELECT pg_is_in_recovery()") == "f"
        except RuntimeError:
            return False

    try:
        eventually(writable, timeout=300, interval=2, message=f"{source.name}'s database writable again")
    except AssertionError as error:
        cluster = database.cluster(source)
        state = {"annotations": cluster["metadata"].get("annotations"), "status": cluster.get("status")}
        raise AssertionError(f"{error}; {source.name}'s Cluster: {json.dumps(state, indent=1)}") from None
    print(f"{source.name}'s database writable {time.monotonic() - returned:.0f}s after its return")
    assert _active_site(database) is source
    move = _moved(traffic, source, {}, since)
    assert move.lost == 0, move.report.summary()  # (what the lost-site test lost is not this move's)
    _replicating(target, database, f"{target.name} replicating from {source.name} again", timeout=240)


# --- The nemesis on this pair (sharedcore_testbed.nemesis): a fixed seed's short schedule, under the writer

NEMESIS_SEED = 26  # a switchover with its operator killed at Promote, a request at the wrong site, slow links
NEMESIS_DURATION = 150.0  # seconds of faults; the last settle follows


@pytest.mark.timeout(1200)
def test_a_short_nemesis_schedule_loses_no_write_and_never_makes_two_primaries(
    database: Database, traffic: Traffic
) -> None:
    """`bench/nemesis.py --nodes real` in brief, on this module's pair as the tests above left it: episodes of
    faults drawn from the seed, each healed and settled, then checked — never two Active sites nor two
    writable primaries, every Failover ended, convergence, no acknowledged write lost outside a recorded
    data-loss window, no row at two primaries, nothing leaked, clean operators."""
    results = Nemesis(database.pair, seed=NEMESIS_SEED, bounds=REAL_BOUNDS, traffic=traffic).run(
        NEMESIS_DURATION
    )
    print(summary(results))
    replay = f"replay: bench/nemesis.py --seed {NEMESIS_SEED} --duration {NEMESIS_DURATION:g} --nodes real"
    assert not results["violations"], f"{replay}\n{summary(results)}"
    moves = [name for name, count in results["failovers"].items() if "Succeeded" in name and count]
    assert moves and results["figures"]["no-lost-writes"]["checked"], (
        f"no move under writes checked\n{replay}"
    )
