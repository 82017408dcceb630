"""`jukinet residents import|show` as a clerk runs them: real CLI processes, real CS, real cards.

A clerk (an operator with only `register-residents`) logs in with the CLI ($JUKINET_PIN, never a PIN on
the command line); the import uses the session that login saved. New residents' rows leave resident_code
and my_number empty, as a clerk enters them: the CS gives the numbers, and the import writes them by line
to the assigned file beside the input (docs/IMPORT.md).
"""

from __future__ import annotations

import os
import pty
import random
import signal
import subprocess
import sys

import numpy as np
import pytest
from conftest import wait_until
from netutil import counts, terminal

from jukinet.cli.resident_file import COLUMNS
from jukinet.cli.residents import ASSIGNED_HEADER, assigned_path
from jukinet.devnet.operators import enroll_operator, issue_card
from jukinet.domain.codes import is_valid_my_number, is_valid_resident_code
from jukinet.domain.synthetic import synthetic_resident
from jukinet.v1 import identity_pb2

CS = "cs:131148"
PIN = "731904"
HEADER = ",".join(COLUMNS)


def _row(record: identity_pb2.IdentityRecord) -> str:
    return ",".join(column.show(record) for column in COLUMNS.values())


def _people(seed: int, n: int, municipality: str = "131148") -> list[identity_pb2.IdentityRecord]:
    rng = random.Random(seed)
    return [synthetic_resident(rng, municipality) for _ in range(n)]


def _assigned(path) -> dict[int, tuple[str, str]]:
    """What the import wrote to the assigned file beside ``path``: line -> (住民票コード, My Number)."""
    header, *rows = assigned_path(path).read_text(encoding="utf-8").splitlines()
    assert header == ASSIGNED_HEADER
    numbers = {}
    for row in rows:
        line, code, number = row.split(",")
        assert int(line) not in numbers, f"line {line} reported twice"
        assert is_valid_resident_code(code) and (number == "" or is_valid_my_number(number)), row
        numbers[int(line)] = (code, number)
    return numbers


@pytest.fixture(scope="module")
def clerk(private_network, worker):
    """`jukinet` as the logged-in clerk of CS 131148: run(*args) → CompletedProcess; popen(*args)."""
    net = private_network.network
    kit = issue_card(worker, net, "operator:131148:clerk-import", PIN, np.random.default_rng(11))
    enroll_operator(worker, terminal(private_network, CS), kit, ["register-residents"], np.random.default_rng(12))
    env = {**os.environ, "JUKINET_PIN": PIN}
    base = [sys.executable, "-m", "jukinet.cli.main"]
    where = ["--state", str(net.state), "--node", CS]

    class Clerk:
        def run(self, *args: str) -> subprocess.CompletedProcess:
            return subprocess.run([*base, *args[:2], *where, *args[2:]], capture_output=True, text=True, env=env,
                                  stdin=subprocess.DEVNULL, timeout=300)  # fmt: skip

        def popen(self, *args: str) -> subprocess.Popen:
            return subprocess.Popen([*base, *args[:2], *where, *args[2:]], stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True, env=env, stdin=subprocess.DEVNULL)  # fmt: skip

        def on_a_terminal(self, *args: str) -> tuple[int, str]:
            """Run with stdout on a pseudo-terminal: (exit status, what the terminal received)."""
            master, slave = pty.openpty()
            process = subprocess.Popen([*base, *args[:2], *where, *args[2:]], stdout=slave, stderr=subprocess.DEVNULL,
                                       stdin=subprocess.DEVNULL, env=env)  # fmt: skip
            os.close(slave)
            received = b""
            while True:
                try:
                    data = os.read(master, 1 << 16)
                except OSError:  # EIO: the process closed the terminal
                    break
                if not data:
                    break
                received += data
            os.close(master)
            return process.wait(60), received.decode()

    login = Clerk().run("operator", "login", "--name", "clerk-import")
    assert login.returncode == 0, login.stderr
    return Clerk()


def test_a_hostile_file_is_answered_row_by_row(private_network, clerk, tmp_path):
    good = _people(1, 40)
    resident = _people(7, 1)[0]
    terminal(private_network, CS).record_change(resident)  # an active resident: the CS gave it its numbers
    twin = identity_pb2.IdentityRecord()
    twin.CopyFrom(resident)
    twin.name.kanji = "別人 花子"  # the same resident code, another person: a conflicting duplicate
    bad_digit = synthetic_resident(random.Random(2), "131148", numbered=True)  # a code typed in, then mistyped
    bad_digit.resident_code = bad_digit.resident_code[:-1] + str((int(bad_digit.resident_code[-1]) + 1) % 10)
    nul, bidi, esc = _people(3, 3)
    nul.name.kanji = "山\x00田"
    bidi.name.kanji = "山田\u202e太郎"
    esc.address.text = "1丁目\x1b[2J"
    elsewhere = _people(4, 1, municipality="131016")[0]
    hostile: list[tuple[str, bytes]] = [  # (what the report must say, the line)
        ("not valid UTF-8: byte 0xff", _row(nul).encode().replace("山".encode(), b"\xff", 1)),
        (f"line longer than {64 * 1024} bytes", b"9" * (10 * 1024 * 1024)),
        ("11 values; the header names 12 columns", _row(good[0]).rsplit(",", 1)[0].encode()),
        ("13 values; the header names 12 columns", (_row(good[0]) + ",surplus").encode()),
        ("name.kanji: character 2 (U+0000", _row(nul).encode()),
        ("name.kanji: character 3 (U+202E RIGHT-TO-LEFT OVERRIDE)", _row(bidi).encode()),
        ("address.text: character 4 (U+001B", _row(esc).encode()),
        (f"resident_code: resident code '{bad_digit.resident_code}': check digit is", _row(bad_digit).encode()),
        ("resident_code: resident " + twin.resident_code + " already has an active record", _row(twin).encode()),
        ("address.municipality_code: this CS (cs:131148) records residents of 131148 only", _row(elsewhere).encode()),
        ("birth_date: expected a date as YYYY-MM-DD", _row(good[5]).replace("-", "/", 1).encode()),
    ]
    lines = [b"\xef\xbb\xbf" + HEADER.encode()] + [_row(r).encode() for r in good[:20]]
    expected = {}
    for said, line in hostile:
        lines.append(line)
        expected[len(lines)] = said
    lines += [_row(r).encode() for r in good[20:]] + [_row(good[7]).encode()]  # an identical duplicate
    path = tmp_path / "hostile.csv"
    path.write_bytes(b"\r\n".join(lines) + b"\r\n")
    before = counts(private_network, CS)

    done = clerk.run("residents", "import", str(path))
    assert done.returncode == 2, done.stderr
    out = done.stdout
    for line, said in expected.items():
        assert f"line {line}: {said}" in out, (line, said, out)
    reported = [ln for ln in out.splitlines() if ln.startswith("line ")]
    assert len(reported) == len(hostile)  # nothing else refused, each once, in line order
    assert [int(ln.split(":")[0].removeprefix("line ")) for ln in reported] == sorted(expected)
    assert (
        "\x1b" not in out and "\u202e" not in out and "\x00" not in out
    )  # nothing from the file reaches the terminal raw
    assert f"{len(good) + len(hostile) + 1} rows: 40 stored, 1 already stored, {len(hostile)} refused" in out
    assert counts(private_network, CS)[:2] == (before[0] + 40, before[1] + 40)  # stored once each, nothing refused

    # The CS numbered each good row (the identical duplicate is the same person: its code again), no refused one.
    numbers = _assigned(path)
    good_lines = [*range(2, 22), *range(22 + len(hostile), 42 + len(hostile))]
    assert sorted(numbers) == [*good_lines, len(lines)]
    assert len({numbers[line][0] for line in good_lines}) == 40 and numbers[len(lines)] == numbers[9]
    assert f"41 rows got their numbers from the CS: {assigned_path(path)}" in out
    code = numbers[5][0]  # good[3], on line 5
    shown = clerk.run("residents", "show", code)
    assert shown.returncode == 0, shown.stderr
    assert f"name.kanji: {good[3].name.kanji}\n" in shown.stdout and "status: active" in shown.stdout
    assert f"resident_code: {code}\n" in shown.stdout and "change_reason: move_in" in shown.stdout
    if numbers[5][1]:  # empty only if the national server did not answer within the CS's deadline (pending)
        assert f"my_number: {numbers[5][1]}\n" in shown.stdout
    assert terminal(private_network, CS).status().records == before[0] + 40  # and the CS keeps serving


def test_json_lines_and_a_header_the_cli_cannot_map(clerk, tmp_path):
    people = _people(5, 3)
    lines = ["{" + ", ".join(f'"{c.name}": "{c.show(p)}"' for c in COLUMNS.values()) + "}" for p in people] + [
        '{"resident_code": 1}',
        "not json",
    ]
    path = tmp_path / "people.jsonl"
    path.write_text("\n".join(lines) + "\n")
    done = clerk.run("residents", "import", str(path))
    assert done.returncode == 2
    assert "line 4: resident_code: must be a JSON string" in done.stdout
    assert "line 5: not valid JSON" in done.stdout and "5 rows: 3 stored, 0 already stored, 2 refused" in done.stdout
    numbers = _assigned(path)
    assert sorted(numbers) == [1, 2, 3]

    again, screen = clerk.on_a_terminal("residents", "import", str(path))
    assert again == 2 and "5 rows: 0 stored, 3 already stored, 2 refused" in screen
    assert _assigned(path) == numbers  # the same rows again: the same residents, reported again
    assert "\r\x1b[K[########################] 5 records" in screen and "records/s, 100%, ETA 0:00:00" in screen
    assert "progress: " not in screen  # a bar redrawn in place, not log lines

    elsewhere = clerk.run("residents", "import", str(path), "--node", "cs:131016")  # no session saved there
    assert elsewhere.returncode == 1 and "no session is open at cs:131016's terminal" in elsewhere.stderr

    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER.replace("name.kana", "furigana") + "\n")
    refused = clerk.run("residents", "import", str(bad))
    assert refused.returncode == 1 and "unknown column(s) 'furigana'" in refused.stderr


def test_an_import_killed_midway_resumes_without_applying_anything_twice(private_network, clerk, tmp_path):
    people = _people(6, 30_000)
    path = tmp_path / "town.csv"
    path.write_text(HEADER + "\n" + "\n".join(_row(p) for p in people) + "\n")
    before = {node: counts(private_network, node) for node in (CS, "national")}

    first = clerk.popen("residents", "import", str(path))
    try:
        wait_until(lambda: counts(private_network, CS)[0] >= before[CS][0] + 3000 or first.poll() is not None,
                   timeout=120, what="the first 3,000 rows stored")  # fmt: skip
        first.send_signal(signal.SIGKILL)
    finally:
        first.wait(30)
    at_kill = counts(private_network, CS)[0] - before[CS][0]
    assert first.returncode == -signal.SIGKILL and 3000 <= at_kill < len(people), "the kill did not land midway"
    # The chunk in flight at the kill commits whole or not at all; either way the re-run finds it.
    second = clerk.run("residents", "import", str(path))
    assert second.returncode == 0, second.stdout + second.stderr
    summary = second.stdout.splitlines()[-1]
    stored = int(summary.split(" rows: ")[1].split(" stored")[0].replace(",", ""))
    already = int(summary.split(" stored, ")[1].split(" already")[0].replace(",", ""))
    assert stored + already == len(people) and already >= at_kill, summary
    assert "progress: " in second.stdout and "records/s" in second.stdout and "ETA" in second.stdout

    n = len(people)
    assert counts(private_network, CS)[:2] == (before[CS][0] + n, before[CS][1] + n)  # one notice each
    numbers = _assigned(path)  # the re-run reports every row's numbers, those stored before the kill too
    assert sorted(numbers) == list(range(2, n + 2)) and len({code for code, _ in numbers.values()}) == n
    wait_until(lambda: counts(private_network, "national")[0] >= before["national"][0] + n, timeout=120,
               what="every row at the national server")  # fmt: skip
    assert counts(private_network, "national")[:2] == (before["national"][0] + n, before["national"][1] + n)
