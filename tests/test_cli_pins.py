"""Where the CLI takes a card PIN from: a descriptor, the environment or a prompt; never the command line."""

from __future__ import annotations

import io
import os

import pytest

from jukinet.cli import pins
from jukinet.cli.main import build_parser
from jukinet.cli.pins import ADMIN_PIN_ENV, PIN_ENV, PinSource, distinct
from jukinet.domain.errors import Problem, Rejected


def pipe_holding(data: bytes) -> int:
    read_end, write_end = os.pipe()
    os.write(write_end, data)
    os.close(write_end)
    return read_end


def refused(source: PinSource) -> str:
    with pytest.raises(Rejected) as info:
        source.read("PIN: ")
    assert info.value.problem is Problem.INVALID
    return str(info.value)


@pytest.fixture(autouse=True)
def no_pins_around(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PIN_ENV, raising=False)
    monkeypatch.delenv(ADMIN_PIN_ENV, raising=False)
    monkeypatch.setattr(pins.sys, "stdin", io.StringIO(""))  # not a terminal

    def no_prompt(prompt: str) -> str:
        raise AssertionError(f"prompted: {prompt}")

    monkeypatch.setattr(pins.getpass, "getpass", no_prompt)


def test_a_descriptor_gives_its_first_line_and_is_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PIN_ENV, "from-the-environment")  # the descriptor comes first
    fd = pipe_holding(b"2468\r\nanything after the first line\n")
    assert PinSource("--pin-fd", fd, PIN_ENV).read("PIN: ") == "2468"
    with pytest.raises(OSError):
        os.fstat(fd)  # read and closed: nothing else in the process can read it again
    assert PinSource("--pin-fd", pipe_holding("東京1234".encode()), PIN_ENV).read("PIN: ") == "東京1234"


def test_the_environment_then_the_prompt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ADMIN_PIN_ENV, "1111")
    assert PinSource("--admin-pin-fd", None, ADMIN_PIN_ENV).read("PIN: ") == "1111"
    assert "set $JUKINET_PIN" in refused(PinSource("--pin-fd", None, PIN_ENV))  # each PIN has its own variable
    asked: list[str] = []
    monkeypatch.setattr(pins.sys.stdin, "isatty", lambda: True)
    monkeypatch.setattr(pins.getpass, "getpass", lambda prompt: asked.append(prompt) or "9999")
    assert PinSource("--pin-fd", None, PIN_ENV).read("PIN of clerk-01's card: ") == "9999"
    assert asked == ["PIN of clerk-01's card: "]


def test_no_source_and_no_terminal_is_a_clear_refusal() -> None:
    message = refused(PinSource("--pin-fd", None, PIN_ENV))
    assert "no PIN" in message and "--pin-fd N" in message and "$JUKINET_PIN" in message


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"", "no PIN was written to it"),
        (b"\n1234\n", "no PIN was written to it"),
        (b"\xff\xfe1234\n", "not UTF-8"),
        (b"7" * 5000, "without a line end is not a PIN"),
    ],
)
def test_a_descriptor_that_holds_no_pin_is_refused(data: bytes, says: str) -> None:
    assert says in refused(PinSource("--pin-fd", pipe_holding(data), PIN_ENV))


def test_a_descriptor_that_is_not_open_is_refused() -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)
    os.close(write_end)
    message = refused(PinSource("--admin-pin-fd", read_end, ADMIN_PIN_ENV))
    assert f"--admin-pin-fd {read_end}: cannot read it" in message


def test_two_pins_on_one_descriptor_are_refused() -> None:
    with pytest.raises(Rejected, match="--pin-fd and --admin-pin-fd name the same descriptor"):
        distinct(PinSource("--pin-fd", 5, PIN_ENV), PinSource("--admin-pin-fd", 5, ADMIN_PIN_ENV))
    distinct(PinSource("--pin-fd", 5, PIN_ENV), PinSource("--admin-pin-fd", None, ADMIN_PIN_ENV))


@pytest.mark.parametrize(
    "argv",
    [
        ["operator", "login", "--node", "cs:131148", "--name", "clerk-01", "--pin", "2222"],
        ["operator", "login", "--node", "cs:131148", "--name", "clerk-01", "--pin=2222"],
        ["operator", "enroll", "--node", "cs:131148", "--name", "c", "--roles", "r", "--pin", "2222"],
        ["operator", "show", "--node", "cs:131148", "--name", "c", "--admin", "admin", "--admin-pin", "1111"],
        ["operator", "unlock", "--node", "cs:131148", "--name", "c", "--admin", "admin", "--admin-pin", "1111"],
    ],
)
def test_a_pin_given_as_an_argument_is_refused_by_name(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(argv)
    assert info.value.code == 2
    error = capsys.readouterr().err
    assert "is gone: a PIN on the command line is readable by every local user" in error
    assert "-fd N" in error


def test_the_descriptor_options_parse() -> None:
    args = build_parser().parse_args(
        ["operator", "enroll", "--node", "cs:131148", "--name", "c", "--roles", "r", "--admin", "admin",
         "--pin-fd", "3", "--admin-pin-fd", "4"]
    )  # fmt: skip
    assert (args.pin_fd, args.admin_pin_fd) == (3, 4)
