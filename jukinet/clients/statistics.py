"""The terminal's call for the monthly population movement report (national server, role read-statistics)."""

from __future__ import annotations

from jukinet.clients.terminal import TerminalClient
from jukinet.v1 import statistics_pb2, statistics_pb2_grpc


class StatisticsClient:
    """Statistics calls of an operator terminal of the national server, with its operator session."""

    def __init__(self, terminal: TerminalClient) -> None:
        self._terminal = terminal
        self._stub = statistics_pb2_grpc.StatisticsServiceStub(terminal.channel)

    def movement_report(self, month: str) -> statistics_pb2.GetMovementReportResponse:
        """The report of ``month`` ("YYYY-MM") as far as the national server's follower has read the feed."""
        request = statistics_pb2.GetMovementReportRequest(month=month)
        return self._terminal.call(self._stub.GetMovementReport, request)
