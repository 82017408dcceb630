"""How a resident card's signature certificate carries the card face (券面事項), and how it is read back.

As JPKI's signature certificate, the four items travel in the SubjectAlternativeName as otherName
entries, each a UTF8String under its own OID (a private arc below the UUID OID 2.25.x of X.667, so no
registered arc is borrowed): name, birth date (YYYYMMDD), sex ("1", "2", "9") and address
(municipality code, a space, the address text). The authentication certificate carries none of them.
"""

from __future__ import annotations

import datetime

from cryptography import x509

from jukinet.domain.cards import CardFace
from jukinet.domain.errors import Problem, Rejected
from jukinet.v1 import identity_pb2

__all__ = ["FACE_OIDS", "card_face_of_certificate", "face_names"]

_ARC = "2.25.33587743606750948311817304644922594473.1"
OID_NAME = x509.ObjectIdentifier(f"{_ARC}.1")
OID_BIRTH_DATE = x509.ObjectIdentifier(f"{_ARC}.2")
OID_SEX = x509.ObjectIdentifier(f"{_ARC}.3")
OID_ADDRESS = x509.ObjectIdentifier(f"{_ARC}.4")
FACE_OIDS = (OID_NAME, OID_BIRTH_DATE, OID_SEX, OID_ADDRESS)
_SEX_OF_CODE = {"1": identity_pb2.SEX_MALE, "2": identity_pb2.SEX_FEMALE}


def _utf8_string(text: str) -> bytes:
    """DER UTF8String (tag 12)."""
    body = text.encode("utf-8")
    size = len(body)
    if size < 0x80:
        return bytes([0x0C, size]) + body
    size_bytes = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([0x0C, 0x80 | len(size_bytes)]) + size_bytes + body


def _read_utf8_string(der: bytes) -> str:
    if len(der) < 2 or der[0] != 0x0C:
        raise ValueError("not a UTF8String")
    first = der[1]
    if first < 0x80:
        size, start = first, 2
    else:
        count = first & 0x7F
        if not 1 <= count <= 4 or len(der) < 2 + count:
            raise ValueError("bad length")
        size, start = int.from_bytes(der[2 : 2 + count], "big"), 2 + count
    if len(der) != start + size:
        raise ValueError("length does not match")
    return der[start:].decode("utf-8")


def face_names(face: CardFace) -> list[x509.GeneralName]:
    """The otherName entries of a signature certificate's SubjectAlternativeName."""
    values = (
        face.name,
        face.birth_date.strftime("%Y%m%d"),
        face.sex_code,
        f"{face.municipality_code} {face.address}",
    )
    return [x509.OtherName(oid, _utf8_string(v)) for oid, v in zip(FACE_OIDS, values, strict=True)]


def card_face_of_certificate(certificate: x509.Certificate) -> CardFace | None:
    """The card face a signature certificate certifies; None for a certificate without one (an
    authentication certificate). Rejected (INVALID) if the entries are malformed."""
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    found: dict[x509.ObjectIdentifier, str] = {}
    try:
        for other in san.get_values_for_type(x509.OtherName):
            if other.type_id in FACE_OIDS:
                found[other.type_id] = _read_utf8_string(other.value)
    except (ValueError, UnicodeDecodeError) as e:
        raise Rejected(
            Problem.INVALID, f"card face entries of certificate 0x{certificate.serial_number:x}: {e}"
        ) from None
    if not found:
        return None
    if len(found) != len(FACE_OIDS):
        raise Rejected(Problem.INVALID, f"certificate 0x{certificate.serial_number:x} carries a partial card face")
    code, _, address = found[OID_ADDRESS].partition(" ")
    try:
        birth = datetime.datetime.strptime(found[OID_BIRTH_DATE], "%Y%m%d").date()
    except ValueError:
        raise Rejected(Problem.INVALID, "the card face's birth date is not YYYYMMDD") from None
    sex = _SEX_OF_CODE.get(found[OID_SEX], identity_pb2.SEX_UNSPECIFIED)
    return CardFace(found[OID_NAME], birth, sex, code, address)
