"""Search in RSpace (issue 20): ``GET /documents`` with ``query`` or ``advancedQuery``.

``DocumentsApiController.getDocuments`` (rspace-web, ``api/v1/DocumentsApiController.java``)
takes either ``query`` (the global search: names, tags, text, form, owner) or
``advancedQuery``, a JSON ``ApiSearchQuery`` of ``ApiSearchTerm``s ``{query, queryType}``
joined by ``operator``; it answers pages of ``ApiDocumentInfo`` (``pageSize`` ≤ 100,
``pageNumber`` from 0, ``totalHits``): documents and notebook entries, never folders or
Gallery files. A query ``TYPE:text`` with TYPE one of the term types becomes one advanced
term (``tag:dna``); a folder or notebook scope adds a ``records`` term with its numeric id,
which the server widens to everything below it and accepts only beside another term. The
API lists no earlier versions of documents or files: ``versions`` stays refused. See
docs/protocols/rspace.md, "Search".
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator

from docfs import errors
from docfs.backends.base import Entry
from docfs.backends.rspace.common import HOME, PAGE, WORKSPACE_DIRS
from docfs.backends.rspace.entries import RSpaceEntries

#: ``ApiSearchTerm.queryType`` values a query may start with (``TYPE:text``); ``records``
#: is the scope's
TERM_TYPES = (
    "global",
    "fullText",
    "tag",
    "name",
    "created",
    "lastModified",
    "form",
    "attachment",
    "owner",
)
_TYPED = re.compile(rf"({'|'.join(TERM_TYPES)}):(.+)", re.DOTALL)


def search_params(scope: Entry | None, query: str) -> dict[str, str]:
    """The ``/documents`` parameters for ``query`` below ``scope``."""
    typed = _TYPED.fullmatch(query)
    kind, text = (typed.group(1), typed.group(2)) if typed else ("global", query)
    scoped = scope is not None and scope.extra.get("type") != HOME
    if scope is not None and scope.extra.get("type") not in WORKSPACE_DIRS:
        raise errors.NotSupported(
            "RSpace searches documents in the Workspace: a search can be limited to a folder "
            "or notebook, not to the Gallery or inside a document"
        )
    if not scoped and typed is None:
        return {"query": query}
    terms = [{"query": text, "queryType": kind}]
    if scoped and scope is not None:
        # numeric ids, comma-separated (spec ``advancedQueryParam`` example 5: "123,456")
        terms.append({"query": scope.extra.get("id") or scope.id[2:], "queryType": "records"})
    return {"advancedQuery": json.dumps({"operator": "and", "terms": terms})}


class RSpaceSearching(RSpaceEntries):
    """``Backend.search`` over ``/documents``."""

    async def search(self, scope: Entry | None, query: str, limit: int) -> AsyncIterator[Entry]:
        params = search_params(scope, query)
        page = 0
        sent = 0
        while sent < limit:
            data = await self._get(
                "/documents",
                endpoint="documents.search",
                params={**params, "pageSize": PAGE, "pageNumber": page},
            )
            docs = data.get("documents") or []
            for doc in docs:
                parent = doc.get("parentFolderId")
                yield self._document_entry(doc, "" if parent is None else str(parent))
                sent += 1
                if sent >= limit:
                    return
            page += 1
            if not docs or page * PAGE >= int(data.get("totalHits", 0)):
                return
