"""gRPC ``Execute`` (``contracts/retrieval.proto``) over the same service calls as HTTP.

The servicer only translates: metadata → the caller's scope (the same authentication and
namespace resolution as the HTTP headers), ``Struct`` inputs → JSON, the service's result
dict → ``ExecuteResponse``, and errors → status codes (the HTTP status of the same error picks
the code). So HTTP and gRPC cannot disagree on what a request returns.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from google.protobuf import json_format
from pydantic import JsonValue

from contracts.auth import Permission
from contracts.generated import retrieval_pb2, retrieval_pb2_grpc
from libs.errors import InvalidInputError, OffshootError
from libs.http import status_of
from services.retrieval.routes import ScopeLike
from services.retrieval.service import RetrievalService

log = logging.getLogger("offshoot.retrieval.grpc")

Authorize = Callable[[str | None, str | None], Awaitable[ScopeLike]]
MAX_LIMIT = 10_000
CODES = {
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.NOT_FOUND,
    409: grpc.StatusCode.FAILED_PRECONDITION,
    422: grpc.StatusCode.INVALID_ARGUMENT,
    503: grpc.StatusCode.UNAVAILABLE,
}


def _json(value: JsonValue) -> JsonValue:
    """``Struct`` numbers are doubles; integral ones become ints again, as JSON would give."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_json(v) for v in value]
    if isinstance(value, dict):
        return {k: _json(v) for k, v in value.items()}
    return value


def _limit(request: Any) -> int | None:
    if not request.HasField("limit"):
        return None
    if not 1 <= request.limit <= MAX_LIMIT:
        raise InvalidInputError(f"limit: must be between 1 and {MAX_LIMIT}")
    return int(request.limit)


class RetrievalServicer(retrieval_pb2_grpc.RetrievalServicer):
    def __init__(self, service: RetrievalService, authorize: Authorize) -> None:
        self.service = service
        self.authorize = authorize

    async def Execute(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        metadata = {key: value for key, value in context.invocation_metadata() or ()}
        try:
            scope = await self.authorize(metadata.get("authorization"), metadata.get("x-namespace"))
            scope.principal.require(Permission.READ)
            result = await self._execute(request, scope.namespace_id)
        except OffshootError as error:
            await context.abort(CODES.get(status_of(error), grpc.StatusCode.UNKNOWN), str(error))
            raise  # abort raises; this line only satisfies the type checker
        response = retrieval_pb2.ExecuteResponse()
        json_format.ParseDict(result, response, ignore_unknown_fields=True)
        return response

    async def _execute(self, request: Any, namespace_id: str) -> dict[str, Any]:
        inputs = _json(json_format.MessageToDict(request.inputs))
        assert isinstance(inputs, dict)
        limit = _limit(request)
        target = request.WhichOneof("target")
        if target == "alias_name":
            return await self.service.execute_alias(
                namespace_id, request.alias_name, inputs, limit=limit,
                user_id=request.user_id if request.HasField("user_id") else None,
                session_id=request.session_id if request.HasField("session_id") else None,
            )  # fmt: skip
        if target == "retriever_id":
            return await self.service.execute(
                namespace_id, request.retriever_id, inputs, limit=limit
            )
        raise InvalidInputError("target: give retriever_id or alias_name")


class GrpcServer:
    """A ``grpc.aio`` server bound to ``host:port`` (port 0 picks a free one: read ``port``)."""

    def __init__(self, server: grpc.aio.Server, port: int) -> None:
        self._server = server
        self.port = port

    @classmethod
    async def start(
        cls, service: RetrievalService, authorize: Authorize, *, host: str, port: int
    ) -> GrpcServer:
        server = grpc.aio.server()
        servicer = RetrievalServicer(service, authorize)
        retrieval_pb2_grpc.add_RetrievalServicer_to_server(servicer, server)  # type: ignore[no-untyped-call]
        bound = server.add_insecure_port(f"{host}:{port}")
        if bound == 0:
            raise OSError(f"gRPC: cannot bind {host}:{port}")
        await server.start()
        log.info("retrieval gRPC listening on %s:%d", host, bound)
        return cls(server, bound)

    async def stop(self, grace: float = 1.0) -> None:
        await self._server.stop(grace)


__all__ = ["Authorize", "GrpcServer", "RetrievalServicer"]
