"""RSpace's ``ApiError`` answer body and the shapes of its common errors (validation 400,
404 with internal code 50301, permission denied as 401, 422 for illegal arguments)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

STATUS_NAMES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "UNPROCESSABLE_ENTITY",
    429: "TOO_MANY_REQUESTS",
    500: "INTERNAL_SERVER_ERROR",
}


def error_timestamp() -> str:
    # Instant.now().toString(): variable fractional precision
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


class ApiError(Exception):
    """An error answered with the server's ``ApiError`` body."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        internal: int | None = None,
        errors: Sequence[str] | None = None,
        message_code: str | None = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.internal = internal if internal is not None else status * 100 + 1
        self.errors = list(errors) if errors is not None else [message]
        self.message_code = message_code
        self.data = data
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        return {
            "status": STATUS_NAMES.get(self.status, str(self.status)),
            "httpCode": self.status,
            "internalCode": self.internal,
            "message": self.message,
            "messageCode": self.message_code,
            "errors": self.errors,
            "iso8601Timestamp": error_timestamp(),
            "data": self.data,
        }


def validation(*problems: tuple[str, Any, str], object_name: str = "request") -> ApiError:
    """400 / 40002 as a Spring ``BindException`` renders it."""
    return ApiError(
        400,
        f"Errors detected: {len(problems)}",
        internal=40002,
        errors=[f"{f}: {m}" for f, _, m in problems],
        data={
            "validationErrors": [
                {"field": f, "rejectedValue": v, "objectName": object_name, "message": m}
                for f, v, m in problems
            ]
        },
    )


def not_found(kind: str, ident: object) -> ApiError:
    return ApiError(
        404,
        f"{kind} with id [{ident}] could not be retrieved - possibly it has been deleted, "
        "does not exist, or you do not have permission to access it.",
        internal=50301,
        errors=[""],
    )


def unauthorised(message: str) -> ApiError:
    return ApiError(401, message, internal=40101, errors=["Authorisation error"])


def illegal(message: str, *, message_code: str | None = None) -> ApiError:
    return ApiError(422, message, internal=42201, errors=[message], message_code=message_code)
