"""What every service's HTTP routes share: errors as JSON with the right status, body limits, auth.

User mistakes never produce a 500: each ``OffshootError`` subclass has its status, and
pydantic's validation errors name the field (``{"error": ..., "detail": [{"field": ...}]}``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from libs.auth import (
    AuthenticationError,
    KeyDirectory,
    PermissionDeniedError,
    Principal,
    authenticate,
)
from libs.errors import (
    ConflictError,
    InfrastructureError,
    InvalidInputError,
    NotFoundError,
    OffshootError,
)

STATUS = [
    (AuthenticationError, 401),
    (PermissionDeniedError, 403),
    (NotFoundError, 404),
    (ConflictError, 409),
    (InvalidInputError, 422),
    (InfrastructureError, 503),
]


def status_of(error: OffshootError) -> int:
    return next((status for kind, status in STATUS if isinstance(error, kind)), 400)


def _field(location: tuple[Any, ...]) -> str:
    return ".".join(
        str(part) for part in location if part not in ("body", "query", "path", "header")
    )


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(OffshootError)
    async def offshoot_error(_: Request, error: OffshootError) -> JSONResponse:
        return JSONResponse({"error": str(error)}, status_code=status_of(error))

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, error: RequestValidationError) -> JSONResponse:
        details = [
            {"field": _field(tuple(item.get("loc", ()))), "message": item.get("msg", "")}
            for item in error.errors()
        ]
        summary = "; ".join(f"{d['field'] or 'body'}: {d['message']}" for d in details)
        return JSONResponse(
            {"error": f"invalid request: {summary}", "detail": details}, status_code=422
        )


class BodyLimit:
    """Refuses request bodies over ``max_bytes`` with 413 before they are read into memory."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and int(declared) > self.max_bytes:
            await self._refuse(send)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise _TooLarge
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        response = JSONResponse(
            {"error": f"request body is larger than the limit of {self.max_bytes} bytes"},
            status_code=413,
        )
        await response({"type": "http"}, _nothing, send)


class _TooLarge(Exception):
    pass


async def _nothing() -> Message:
    return {"type": "http.disconnect"}


def principal_dependency(directory: KeyDirectory) -> Callable[..., Awaitable[Principal]]:
    """A FastAPI dependency authenticating ``Authorization: Bearer <key>``."""

    async def principal(authorization: Annotated[str | None, Header()] = None) -> Principal:
        token = None
        if authorization:
            scheme, _, value = authorization.partition(" ")
            token = value.strip() if scheme.lower() == "bearer" else None
        return await authenticate(directory, token)

    return principal
