"""An optional API key for the REST API, the same on uvicorn (`make api`) and Ray Serve (`make serve`).

When the server's environment has API_KEY, every /v1/* request must carry it, as
`Authorization: Bearer <key>` or `X-API-Key: <key>`; /health, /docs and /openapi.json stay open, so
liveness checks and clients that read the schema need no key. A missing or wrong key is a 401 in the
one error shape. Without API_KEY nothing changes (the server binds to loopback by default).

The key is compared in constant time and never written anywhere: not in logs, not in error messages.
"""

from __future__ import annotations

import copy
import hmac
import os

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

API_KEY_ENV = "API_KEY"
PROTECTED_PREFIX = "/v1/"
BEARER_SCHEME = "bearerAuth"
HEADER_SCHEME = "apiKeyHeader"


def configured_key() -> str | None:
    """The key the server requires, read on every request so that a restart is the only way to change it."""
    return os.environ.get(API_KEY_ENV, "").strip() or None


def presented_key(headers: list[tuple[bytes, bytes]]) -> str | None:
    for name, value in headers:
        if name == b"x-api-key":
            return value.decode("latin-1").strip()
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer":
                return token.strip()
    return None


def is_protected(path: str) -> bool:
    return path.startswith(PROTECTED_PREFIX)


class ApiKeyMiddleware:
    """Refuse /v1/* requests without the configured key before any body is read."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = configured_key()
        if scope["type"] == "http" and key and is_protected(scope["path"]):
            given = presented_key(scope["headers"])
            if given is None or not hmac.compare_digest(given.encode(), key.encode()):
                reason = "is missing" if given is None else "is wrong"
                response = JSONResponse(
                    {
                        "error": {
                            "type": "Unauthorized",
                            "message": f"this API needs a key and the request's key {reason}; send "
                            "`Authorization: Bearer <key>` or `X-API-Key: <key>`",
                        }
                    },
                    status_code=401,
                    headers={"WWW-Authenticate": "Bearer"},
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def add_security_to_schema(schema: dict) -> dict:
    """The OpenAPI schema with the key's two schemes on every /v1 operation, when a key is required."""
    if not configured_key():
        return schema
    schema = copy.deepcopy(schema)  # FastAPI caches the plain schema; it must stay plain
    components = schema.setdefault("components", {})
    components.setdefault("securitySchemes", {}).update(
        {
            BEARER_SCHEME: {"type": "http", "scheme": "bearer"},
            HEADER_SCHEME: {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        }
    )
    for path, operations in schema.get("paths", {}).items():
        if is_protected(path):
            for operation in operations.values():
                operation["security"] = [{BEARER_SCHEME: []}, {HEADER_SCHEME: []}]
    return schema
