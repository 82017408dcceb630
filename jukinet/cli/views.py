"""What the CLI shows of a running network: node status tables and agency lookups."""

from __future__ import annotations

from pathlib import Path

import grpc

from jukinet.devnet.access import agency_client, terminal_for
from jukinet.devnet.provision import Network, load_network
from jukinet.domain.directory import iso_ms
from jukinet.v1 import admin_pb2, directory_pb2, identity_pb2


def node_statuses(net: Network) -> dict[str, admin_pb2.GetStatusResponse | str]:
    """Each node's status, or why it could not be read, by node name."""
    out: dict[str, admin_pb2.GetStatusResponse | str] = {}
    for spec in net.topology.nodes:
        try:
            out[spec.name] = terminal_for(net, spec).status()
        except grpc.RpcError as exc:
            out[spec.name] = f"unreachable: {exc.code().name}"
    return out


def status_lines(statuses: dict[str, admin_pb2.GetStatusResponse | str]) -> list[str]:
    lines = [f"{'node':>12} {'records':>8} {'history':>8} {'queued':>7} {'provided':>8}"]
    links: list[str] = []
    directories: list[str] = []
    for name, s in statuses.items():
        if isinstance(s, str):
            lines.append(f"{name:>12} {s}")
            continue
        lines.append(f"{name:>12} {s.records:>8} {s.history_entries:>8} {s.queued:>7} {s.provisions:>8}")
        links += [f"{name:>12} → {link_line(link)}" for link in s.links]
        if s.HasField("directory"):
            directories.append(f"{name:>12}: {directory_line(s.directory)}")
    return (
        lines
        + (["", "links:", *links] if links else [])
        + (["", "network directory:", *directories] * bool(directories))
    )


def directory_line(d: directory_pb2.DirectoryStatus) -> str:
    state = directory_pb2.DirectoryState.Name(d.state).removeprefix("DIRECTORY_STATE_").lower()
    if d.state == directory_pb2.DIRECTORY_STATE_BOOTSTRAP:
        text = f"none yet ({d.source})"
    else:
        text = (
            f"version {d.version} ({state}), issued {iso_ms(d.issued_at.ToMilliseconds())}, "
            f"expires {iso_ms(d.expires_at.ToMilliseconds())}, from {d.source}"
        )
    return text + (f"; last refresh: {d.last_error}" if d.last_error else "")


def link_line(link: admin_pb2.LinkStatus) -> str:
    state = admin_pb2.LinkState.Name(link.state).removeprefix("LINK_STATE_").lower().replace("_", " ")
    text = (
        f"{link.destination} ({link.address or 'no address'}): {state}, {link.pending} pending, "
        f"receipted through #{link.last_receipted_sequence}, {link.batches_delivered} batches, "
        f"{link.connects} connects"
    )
    if link.quarantined:
        text += f", {link.quarantined} quarantined (jukinet outbox quarantine list)"
    if link.consecutive_failures:
        text += f", {link.consecutive_failures} failures (last: {link.last_error}); retry in {link.retry_in_ms} ms"
    return text


def print_status(state: Path) -> int:
    print("\n".join(status_lines(node_statuses(load_network(state)))))
    return 0


def describe(record: identity_pb2.IdentityRecord) -> str:
    d = record.birth_date
    parts = [
        record.resident_code or "(code withheld)",
        record.name.kanji or "(name withheld)",
        f"born {d.year:04d}-{d.month:02d}-{d.day:02d}" if record.HasField("birth_date") else "",
        identity_pb2.Sex.Name(record.sex).removeprefix("SEX_").lower() if record.sex else "",
        f"{record.address.municipality_code} {record.address.text}" if record.HasField("address") else "",
        identity_pb2.ChangeReason.Name(record.change_reason).removeprefix("CHANGE_REASON_").lower()
        if record.change_reason
        else "",
    ]
    return ", ".join(p for p in parts if p)


def lookup(
    state: Path,
    agency: str,
    business: str,
    resident_code: str | None,
    my_number: str | None,
    agency_identifier: str | None = None,
) -> int:
    client = agency_client(load_network(state), agency)
    try:
        if resident_code:
            provided = client.by_resident_code(business, resident_code)
        elif agency_identifier:
            provided = client.by_agency_identifier(business, agency_identifier)
        else:
            provided = client.by_my_number(business, my_number or "")
    except grpc.RpcError as exc:
        print(f"refused: {exc.code().name}: {exc.details()}")
        return 2
    named = f" (agency identifier {provided.agency_identifier})" if provided.agency_identifier else ""
    print(f"provision #{provided.provision_id}{named}: {describe(provided.record)}")
    return 0
