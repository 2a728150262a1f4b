"""DSpace 6 handlers for ``/bitstreams`` (``BitstreamResource``; docs/protocols/dspace6.md)."""

from __future__ import annotations

import hashlib

from starlette.responses import Response, StreamingResponse

from docfs.emulators.dspace6 import rendering
from docfs.emulators.dspace6.bodies import Bodies, Req
from docfs.emulators.dspace6.errors import HttpError
from docfs.emulators.dspace6.formats import format_from_rest_name
from docfs.emulators.dspace6.model import Bitstream, stored_value
from docfs.emulators.dspace6.rendering import (
    BUFFER_LIMIT,
    Rendering,
    chunks,
    empty,
    expand_fields,
    header_text,
    java_str,
)


class BitstreamRoutes(Bodies, Rendering):
    """Bitstreams: metadata, content (``/retrieve``, ``/data``) and resource policies."""

    def _h_bitstreams(self, rq: Req) -> Response:
        limit, offset = self._paging(rq, 100)
        fields = expand_fields(rq.param("expand"))
        page = list(self._bitstreams.values())[offset : offset + limit]
        return rendering.json_response(
            [self._bitstream_json(b, fields, rq.who) for b in page if self._can(rq.who, "READ", b)]
        )

    def _h_bitstream(self, rq: Req, bid: str) -> Response:
        b = self._find(rq.who, Bitstream, bid, "READ")
        return rendering.json_response(
            self._bitstream_json(b, expand_fields(rq.param("expand")), rq.who)
        )

    def _h_retrieve(self, rq: Req, bid: str) -> Response:
        b = self._find(rq.who, Bitstream, bid, "READ")
        headers = {
            "content-type": b.fmt.mime,
            # raw name, no escaping: that is what DSpace sends
            "content-disposition": header_text(f'attachment; filename="{java_str(b.name)}"'),
        }
        if len(b.data) <= BUFFER_LIMIT:
            return Response(b.data, headers=headers)
        return StreamingResponse(chunks(b.data), headers=headers)

    def _h_update_bitstream(self, rq: Req, bid: str) -> Response:
        body = self._bitstream_body(rq)
        sequence = body.get("sequenceId")
        if sequence is not None and (isinstance(sequence, bool) or not isinstance(sequence, int)):
            raise HttpError(400, "Can not deserialize Integer out of sequenceId", plain=True)
        policies = None
        if body.get("policies") is not None:
            policies = self._policies_from(body["policies"])
        b = self._find(rq.who, Bitstream, bid, "WRITE")
        name = self._string(body, "name")
        if name is None:
            raise HttpError(500)  # getMimeType(null): NullPointerException
        # BitstreamResource.updateBitstream (dspace-6_x): setDescription and setName go through
        # setMetadataSingleValue, which does nothing for null (the description stays) and
        # otherwise stores what addMetadata stores (trimmed, controls blanked); the format is
        # guessed from the name as sent. bitstreamService.update leaves the item alone: its
        # lastModified does not change.
        description = self._string(body, "description")
        if description is not None:
            b.description = stored_value(description)
        b.fmt = format_from_rest_name(name)
        b.name = stored_value(name)
        if sequence is not None and sequence != -1:
            b.sequence_id = sequence
        if policies is not None:
            b.policies = policies
        return empty()

    def _h_replace_data(self, rq: Req, bid: str) -> Response:
        b = self._find(rq.who, Bitstream, bid, "WRITE")
        b.data = rq.body
        b.md5 = hashlib.md5(rq.body).hexdigest()
        self._touch(b.item)
        return empty()

    def _h_delete_bitstream(self, rq: Req, bid: str) -> Response:
        b = self._find(rq.who, Bitstream, bid, "DELETE")
        self._remove_bitstream(b)
        return empty()

    def _h_policies(self, rq: Req, bid: str) -> Response:
        b = self._find(rq.who, Bitstream, bid, "READ")
        return rendering.json_response([self._policy_json(p, b) for p in b.policies])

    def _h_add_policy(self, rq: Req, bid: str) -> Response:
        body = self._check_props(self._body_json(rq), "ResourcePolicy")
        b = self._find(rq.who, Bitstream, bid, "WRITE")
        if body is None:
            raise HttpError(500)
        policy = self._policy_from(body)
        b.policies.append(policy)
        self._touch(b.item)
        return rendering.json_response(self._policy_json(policy, b))

    def _h_delete_policy(self, rq: Req, bid: str, pid: str) -> Response:
        b = self._find(rq.who, Bitstream, bid, "WRITE")
        match = next((p for p in b.policies if str(p.id) == pid), None)
        if match is None:
            raise HttpError(404)
        b.policies.remove(match)
        self._touch(b.item)
        return empty()
