"""The DocSpace route table: the ``/api/2.0`` routes and the ``.ashx`` handlers.

Only the table lives here; the handlers are grouped by resource in the sibling modules.
"""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from docfs.emulators.docspace.routes.content import ContentRoutes
from docfs.emulators.docspace.routes.folders import FolderRoutes
from docfs.emulators.docspace.routes.operations import OperationRoutes
from docfs.emulators.docspace.routes.people import PeopleRoutes
from docfs.emulators.docspace.routes.uploads import UploadRoutes


class DocSpaceRoutes(PeopleRoutes, FolderRoutes, OperationRoutes, UploadRoutes, ContentRoutes):
    """Every handler group, and the table that maps paths to them."""

    def routes(self) -> list[BaseRoute]:
        """Literal paths come before ``{folderId}``: Starlette takes the first match."""
        r = self._route
        api = "/api/2.0"
        files = f"{api}/files"
        routes = [
            r(f"{api}/authentication", self._h_login, ["POST"], anonymous=True),
            r(f"{api}/authentication.json", self._h_login, ["POST"], anonymous=True),
            r(f"{api}/authentication", self._h_is_authenticated, ["GET"], anonymous=True),
            r(f"{api}/authentication/logout", self._h_logout, ["POST"], anonymous=True),
            r(f"{api}/people/@self", self._h_self, ["GET"]),
            r(f"{api}/keys", self._h_create_key, ["POST"]),
            r(f"{api}/keys", self._h_list_keys, ["GET"]),
            r(f"{files}/settings", self._h_settings, ["GET"]),
            r(f"{files}/updateifexist", self._h_update_if_exist, ["PUT"]),
            r(f"{files}/@root", self._h_root, ["GET"]),
            r(f"{files}/rooms", self._h_rooms, ["GET"]),
            r(f"{files}/rooms", self._h_create_room, ["POST"]),
            r(f"{files}/rooms/{{roomId}}", self._h_room_info, ["GET"]),
            r(f"{files}/rooms/{{roomId}}", self._h_update_room, ["PUT"]),
            r(f"{files}/rooms/{{roomId}}", self._h_delete_room, ["DELETE"]),
            r(f"{files}/fileops", self._h_operations, ["GET"]),
            r(f"{files}/fileops/delete", self._h_ops_delete, ["PUT"]),
            r(f"{files}/fileops/move", self._h_ops_move, ["PUT"]),
            r(f"{files}/fileops/copy", self._h_ops_copy, ["PUT"]),
            r(f"{files}/fileops/emptytrash", self._h_ops_empty_trash, ["PUT"]),
            r(f"{files}/file/{{fileId}}", self._h_file_info, ["GET"], anonymous=True),
            r(f"{files}/file/{{fileId}}", self._h_update_file, ["PUT"], anonymous=True),
            r(f"{files}/file/{{fileId}}", self._h_delete_file, ["DELETE"]),
            r(f"{files}/file/{{fileId}}/history", self._h_history, ["GET"], anonymous=True),
            r(f"{files}/file/{{fileId}}/edit_session", self._h_edit_session, ["POST"]),
            r(f"{files}/file/{{fileId}}/saveediting", self._h_save_editing, ["PUT"]),
            r(f"{files}/file/{{fileId}}/comment", self._h_comment, ["PUT"]),
            r(f"{files}/file/{{fileId}}/lock", self._h_lock, ["PUT"]),
            r(f"{files}/folder/{{folderId}}", self._h_folder_info, ["GET"], anonymous=True),
            r(f"{files}/folder/{{folderId}}", self._h_create_folder, ["POST"]),
            r(f"{files}/folder/{{folderId}}", self._h_rename_folder, ["PUT"]),
            r(f"{files}/folder/{{folderId}}", self._h_delete_folder, ["DELETE"]),
            r(f"{files}/folder/{{folderId}}/path", self._h_path, ["GET"], anonymous=True),
            r(f"{files}/{{folderId}}/upload", self._h_upload, ["POST"]),
            r(f"{files}/{{folderId}}/insert", self._h_insert, ["POST"]),
            r(f"{files}/{{folderId}}/file", self._h_create_file, ["POST"]),
            r(f"{files}/{{folderId}}/upload/create_session", self._h_create_session, ["POST"]),
            r(f"{files}/{{folderId}}/session", self._h_rest_session, ["POST"]),
            r(f"{files}/{{folderId}}/session/{{sid}}", self._h_rest_chunk, ["POST"]),
            r(f"{files}/{{folderId}}/session/{{sid}}/upload", self._h_rest_numbered, ["POST"]),
            r(f"{files}/{{folderId}}/session/{{sid}}/finalize", self._h_rest_finalize, ["PUT"]),
            r(f"{files}/{{folderId}}/session/{{sid}}", self._h_rest_abort, ["DELETE"]),
            r(f"{files}/{{folderId}}", self._h_list, ["GET"], anonymous=True),
        ]
        routes += [
            Route("/filehandler.ashx", self._h_download, methods=["GET"]),
            Route("/ChunkedUploader.ashx", self._h_chunk, methods=["POST"]),
            Route("/storage/{key}", self._h_storage, methods=["GET"]),
        ]
        return list(routes)
