"""The operator RPCs at every node: thin servicers over :mod:`jukinet.server.login`."""

from __future__ import annotations

from dataclasses import dataclass

from jukinet.domain.errors import Rejected
from jukinet.domain.operators import Role
from jukinet.server.audit import Auditor
from jukinet.server.login import OperatorAdministration, OperatorLogins
from jukinet.server.runtime.executor import Blocking
from jukinet.server.runtime.guard import guarded
from jukinet.server.runtime.peers import Caller
from jukinet.server.runtime.policy import OperatorWithRole, TerminalOf
from jukinet.v1 import audit_pb2, operator_pb2, operator_pb2_grpc

A = audit_pb2


class OperatorAuthRpc(operator_pb2_grpc.OperatorAuthServiceServicer):
    def __init__(self, logins: OperatorLogins, sites: frozenset[str], auditor: Auditor, blocking: Blocking) -> None:
        self._logins = logins
        self.auditor = auditor
        self.blocking = blocking
        self.terminals = TerminalOf(sites)
        self.logged_in = OperatorWithRole(self.terminals)

    @guarded("terminals", audit=A.AUDIT_ACTION_LOGIN)
    def BeginLogin(self, request: operator_pb2.BeginLoginRequest, caller: Caller) -> operator_pb2.BeginLoginResponse:
        return self._logins.begin(request.operator_id, caller)

    @guarded("terminals", audit=A.AUDIT_ACTION_LOGIN)
    def CompleteLogin(
        self, request: operator_pb2.CompleteLoginRequest, caller: Caller
    ) -> operator_pb2.CompleteLoginResponse:
        return self._logins.complete(request, caller)

    @guarded("logged_in", audit=A.AUDIT_ACTION_LOGOUT)
    def Logout(self, request: operator_pb2.LogoutRequest, caller: Caller) -> operator_pb2.LogoutResponse:
        self._logins.logout(caller)
        return operator_pb2.LogoutResponse()


@dataclass(frozen=True)
class _FirstOperatorOrAdministrator:
    administration: OperatorAdministration

    def deny(self, caller: Caller) -> Rejected | None:
        return self.administration.may_enroll(caller)


class OperatorAdminRpc(operator_pb2_grpc.OperatorAdminServiceServicer):
    def __init__(
        self,
        administration: OperatorAdministration,
        logins: OperatorLogins,
        sites: frozenset[str],
        auditor: Auditor,
        blocking: Blocking,
    ) -> None:
        self._administration = administration
        self._logins = logins
        self.auditor = auditor
        self.blocking = blocking
        self.enrollers = _FirstOperatorOrAdministrator(administration)
        self.administrators = OperatorWithRole(TerminalOf(sites), Role.ADMINISTER_OPERATORS)

    @guarded("enrollers", audit=A.AUDIT_ACTION_ENROLL_OPERATOR)
    def EnrollOperator(
        self, request: operator_pb2.EnrollOperatorRequest, caller: Caller
    ) -> operator_pb2.EnrollOperatorResponse:
        return operator_pb2.EnrollOperatorResponse(operator=self._administration.enroll(request, caller))

    @guarded("administrators", audit=A.AUDIT_ACTION_UNLOCK_OPERATOR)
    def UnlockOperator(
        self, request: operator_pb2.UnlockOperatorRequest, caller: Caller
    ) -> operator_pb2.UnlockOperatorResponse:
        return operator_pb2.UnlockOperatorResponse(operator=self._administration.unlock(request.operator_id, caller))

    @guarded("administrators", audit=A.AUDIT_ACTION_REVOKE_SESSIONS)
    def RevokeSessions(
        self, request: operator_pb2.RevokeSessionsRequest, caller: Caller
    ) -> operator_pb2.RevokeSessionsResponse:
        self._administration.revoke_sessions(request.operator_id, caller)
        return operator_pb2.RevokeSessionsResponse()

    @guarded("administrators")
    def GetOperator(self, request: operator_pb2.GetOperatorRequest, caller: Caller) -> operator_pb2.GetOperatorResponse:
        return operator_pb2.GetOperatorResponse(operator=self._administration.show(request.operator_id))

    @guarded("administrators", audit=A.AUDIT_ACTION_LIST_LOGIN_ATTEMPTS)
    def ListLoginAttempts(
        self, request: operator_pb2.ListLoginAttemptsRequest, caller: Caller
    ) -> operator_pb2.ListLoginAttemptsResponse:
        return self._logins.attempts(request.operator_id, caller)
