"""The RSpace emulator's defaults and fixed limits: the seeded account, the release it
reports, and the byte limits of uploads and streamed bodies."""

from __future__ import annotations

API = "/api/v1"
DEFAULT_API_KEY = "docfsDemoApiKey0123456789"
DEFAULT_USERNAME = "user1a"
DEFAULT_PASSWORD = "user1a-Passw0rd"
#: what ``GET /status`` reports by default (``rspaceVersion`` is the bare pom version)
DEFAULT_VERSION = "2.16.0"
#: the first release with ``POST /documents/move``
MOVE_SINCE = "2.16"
#: ``APIFileUploadThrottlingInterceptor.BYTES_PER_MB``
BYTES_PER_MB = 1048576
#: ``ThrottleInterval`` lengths of the upload quota's two definitions, in seconds
UPLOAD_PERIODS = (("hour", 3600.0), ("day", 86400.0))
#: bodies above this size are streamed in chunks of this size (so resets can cut them)
CHUNK = 64 * 1024
MAX_UPLOAD = 50 * 1024 * 1024
