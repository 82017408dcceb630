"""``jukinet stats movements --month YYYY-MM [--csv FILE] [--png FILE]``: the monthly population movement
report of the national server, with the session ``jukinet operator login --node national`` left (role
'read-statistics'; every read is audited there).

It prints the totals and how far the national server had counted its change feed; ``--csv`` writes every
row of the answer (one header, a ``kind`` column: the totals, prefecture flows, municipality flows and each
municipality's counts); ``--png`` draws inter-prefecture moves and births/deaths by municipality
(matplotlib, loaded only then, Agg backend; labels are codes, which any font renders).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from jukinet.cli.operators import session_terminal
from jukinet.clients.statistics import StatisticsClient
from jukinet.devnet.provision import load_network
from jukinet.v1 import statistics_pb2

CSV_HEADER = ("month", "kind", "origin", "destination", "count")
TOTALS = ("births", "deaths", "inter_prefecture_moves", "intra_prefecture_moves", "relocations",
          "arrivals_without_grant", "emigrations")  # fmt: skip
PER_MUNICIPALITY = ("births", "deaths", "moves_in", "moves_out", "relocations", "arrivals_without_grant",
                    "emigrations")  # fmt: skip
MAX_PLOTTED = 30  # bars per panel: the largest flows / municipalities; the CSV has every row


def csv_rows(report: statistics_pb2.GetMovementReportResponse) -> Iterator[tuple[str, str, str, str, int]]:
    """The report as rows of CSV_HEADER: ``total_<name>`` (no codes), ``prefecture_flow`` and
    ``municipality_flow`` (origin, destination), and ``<count>`` per municipality (the code as origin)."""
    month = report.month
    for name in TOTALS:
        yield month, f"total_{name}", "", "", getattr(report.totals, name)
    for p in report.prefecture_flows:
        yield month, "prefecture_flow", p.origin_prefecture, p.destination_prefecture, p.moves
    for f in report.municipality_flows:
        yield month, "municipality_flow", f.origin_municipality, f.destination_municipality, f.moves
    for m in report.municipalities:
        for name in PER_MUNICIPALITY:
            if n := getattr(m, name):
                yield month, name, m.municipality_code, "", n


def write_csv(report: statistics_pb2.GetMovementReportResponse, path: Path) -> int:
    with path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(CSV_HEADER)
        rows = 0
        for row in csv_rows(report):
            out.writerow(row)
            rows += 1
    return rows


def write_png(report: statistics_pb2.GetMovementReportResponse, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    flows = sorted(report.prefecture_flows, key=lambda p: -p.moves)[:MAX_PLOTTED]
    places = sorted(report.municipalities, key=lambda m: -(m.births + m.deaths))[:MAX_PLOTTED]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 8))
    top.bar([f"{p.origin_prefecture}->{p.destination_prefecture}" for p in flows], [p.moves for p in flows])
    top.set_title(f"Inter-prefecture moves, {report.month} (origin->destination prefecture code)")
    top.set_ylabel("moves")
    xs = range(len(places))
    bottom.bar([x - 0.2 for x in xs], [m.births for m in places], width=0.4, label="births")
    bottom.bar([x + 0.2 for x in xs], [m.deaths for m in places], width=0.4, label="deaths")
    bottom.set_xticks(list(xs), [m.municipality_code for m in places])
    bottom.set_title(f"Births and deaths by municipality code, {report.month}")
    bottom.legend()
    for axis in (top, bottom):
        axis.tick_params(axis="x", labelrotation=60)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)


def movements(state: Path, node: str, month: str, csv_path: Path | None, png_path: Path | None) -> int:
    report = StatisticsClient(session_terminal(load_network(state), node)).movement_report(month)
    t = report.totals
    print(f"population movement report {report.month} from {node}: counted up to change-feed position "
          f"{report.read_position} of {report.feed_position}")  # fmt: skip
    print(f"  births {t.births}  deaths {t.deaths}  moves between prefectures {t.inter_prefecture_moves}  "
          f"within a prefecture {t.intra_prefecture_moves}")  # fmt: skip
    print(f"  relocations within a municipality {t.relocations}  arrivals without a grant "
          f"{t.arrivals_without_grant}  emigrations {t.emigrations}")  # fmt: skip
    for capped, what in ((report.municipality_flows_truncated, "municipality flows"),
                         (report.municipalities_truncated, "municipalities")):  # fmt: skip
        if capped:
            print(f"  the national server answered only the first rows of {what} (capped)")
    if csv_path is not None:
        print(f"wrote {write_csv(report, csv_path)} rows to {csv_path}")
    if png_path is not None:
        write_png(report, png_path)
        print(f"wrote a plot to {png_path}")
    return 0
