"""Verifying a network directory before a node believes it (a policy object, as sigstore-python's).

:meth:`DirectoryPolicy.verify` checks, in order, and refuses at the first failure:

1. the payload is at most ``MAX_DIRECTORY_BYTES``;
2. the envelope carries a certificate that chains to the node CA, is valid now, is not revoked, is a
   *signing* certificate (a token key, not a TLS key file) and names ``national``;
3. the envelope is a ``jukinet.v1.NetworkDirectory`` signed by that certificate's key over the exact bytes;
4. the structure is valid (:meth:`jukinet.domain.directory.Directory.from_message`), and the national
   server's entry lists the very certificate that signed it;
5. the version is not older than the one cached (a rollback is refused), and the same version is the
   same bytes (two different directories with one number are refused);
6. it was not issued in the future (beyond a small clock skew) and has not expired — unless the caller
   asks only to read a cached one back (``allow_expired``: a restart must know what it had, to report it
   expired and to refuse anything older).
"""

from __future__ import annotations

from dataclasses import dataclass

from jukinet.domain.clock import SYSTEM_CLOCK, Clock
from jukinet.domain.directory import Directory, iso_ms
from jukinet.domain.errors import Problem, Rejected
from jukinet.domain.limits import MAX_DIRECTORY_BYTES
from jukinet.domain.node_ids import NodeId
from jukinet.pki.envelope import open_signed
from jukinet.pki.trust import PeerIdentity, TrustStore
from jukinet.v1 import directory_pb2, envelope_pb2

__all__ = ["DIRECTORY_TYPE", "MAX_CLOCK_SKEW_MS", "DirectoryPolicy", "VerifiedDirectory"]

DIRECTORY_TYPE = directory_pb2.NetworkDirectory.DESCRIPTOR.full_name
MAX_CLOCK_SKEW_MS = 5 * 60 * 1000
"""A directory issued at most this far in the national server's future is accepted (clocks differ)."""


@dataclass(frozen=True)
class VerifiedDirectory:
    """A directory that passed the policy: the envelope exactly as signed, its content, and its signer."""

    envelope: envelope_pb2.Signed
    directory: Directory
    signer: PeerIdentity

    @property
    def version(self) -> int:
        return self.directory.version


@dataclass(frozen=True)
class DirectoryPolicy:
    trust: TrustStore
    clock: Clock = SYSTEM_CLOCK

    def verify(
        self,
        envelope: envelope_pb2.Signed,
        cached: VerifiedDirectory | None = None,
        *,
        floor: int = 0,
        allow_expired: bool = False,
    ) -> VerifiedDirectory:
        """Check ``envelope`` (see the module docstring) against the ``cached`` directory (or, without
        one, against the lowest acceptable version ``floor``); Rejected at the first failure."""
        if len(envelope.payload) > MAX_DIRECTORY_BYTES:  # 1
            raise Rejected(
                Problem.EXHAUSTED, f"network directory of {len(envelope.payload)} bytes; at most {MAX_DIRECTORY_BYTES}"
            )
        if not envelope.certificate:  # 2
            raise Rejected(Problem.UNAUTHENTICATED, "network directory carries no signer certificate")
        signer = self.trust.identify_as(envelope.certificate, NodeId.national(), purpose="signing")
        message = open_signed(envelope, directory_pb2.NetworkDirectory, signer.public_key)  # 3
        directory = Directory.from_message(message)  # 4
        national = directory.entry(NodeId.national())
        if national is None or national.fingerprints.signing != signer.fingerprint:
            raise Rejected(
                Problem.DENIED,
                f"network directory version {directory.version} is signed by a national certificate it does not list",
            )
        version = directory.version  # 5
        if cached is not None:
            if version < cached.version:
                raise Rejected(
                    Problem.CONFLICT,
                    f"network directory version {version} is older than version {cached.version} held here: refused",
                )
            if version == cached.version and envelope.payload != cached.envelope.payload:
                raise Rejected(
                    Problem.CONFLICT,
                    f"network directory version {version} differs from the version {version} held here: refused",
                )
        elif version < floor:
            raise Rejected(
                Problem.CONFLICT,
                f"network directory version {version} is older than version {floor} seen here: refused",
            )
        now = self.clock.now_ms()  # 6
        if directory.issued_at_ms > now + MAX_CLOCK_SKEW_MS:
            raise Rejected(
                Problem.INVALID,
                f"network directory version {version} is issued in the future ({iso_ms(directory.issued_at_ms)})",
            )
        if directory.expired(now) and not allow_expired:
            raise Rejected(
                Problem.UNAVAILABLE,
                f"network directory version {version} expired at {iso_ms(directory.expires_at_ms)}",
            )
        return VerifiedDirectory(envelope, directory, signer)
