"""DSpace 6 error answers: Tomcat's HTML error page, or the plain-text 400s of Jackson.

See docs/protocols/dspace6.md (errors): the REST layer's ``WebApplicationException``s carry no
entity of their own, so the servlet container writes its error report.
"""

from __future__ import annotations

from starlette.responses import Response

REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    415: "Unsupported Media Type",
    500: "Internal Server Error",
}


class HttpError(Exception):
    """Ends a request with an error status; bodies are a Tomcat-like error page, or
    ``text/plain`` for Jersey's 400s (docs/protocols/dspace6.md, Errors)."""

    def __init__(self, status: int, message: str | None = None, *, plain: bool = False) -> None:
        super().__init__(status, message)
        self.status = status
        self.message = message
        self.plain = plain

    def response(self) -> Response:
        if self.plain:
            return Response(
                (self.message or REASONS.get(self.status, "")).encode(),
                status_code=self.status,
                headers={"content-type": "text/plain"},
            )
        return html_error(self.status, self.message)


def html_error(status: int, message: str | None = None) -> Response:
    """A small Tomcat-like error page: DSpace's errors carry no entity of their own."""
    reason = REASONS.get(status, "Error")
    text = message or reason
    body = (
        "<!DOCTYPE html><html><head><title>Apache Tomcat - Error report</title></head><body>"
        f"<h1>HTTP Status {status} - {reason}</h1><hr/>"
        f"<p><b>type</b> Status report</p><p><b>message</b> {text}</p>"
        "<hr/><h3>Apache Tomcat</h3></body></html>"
    )
    return Response(
        body.encode(), status_code=status, headers={"content-type": "text/html;charset=utf-8"}
    )
