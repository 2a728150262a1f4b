"""Every backend as a target of the mount-based reliability scenarios.

A ``Target`` is one repository type seen from a scenario: it runs that repository's emulator
on loopback, says how ``docfs mount`` reaches it (``TYPE:URL`` with ``DOCFS_*`` credentials,
or a named remote in a config file where the documented client pacing must be lifted for a
test to finish in seconds), builds places to write into behind the mount's back and reads the
server's state back from the emulator's backdoor:

=========  ===================================  =====================================
backend    ``container``: mkdir makes dirs      ``folder``: a dir that holds files
=========  ===================================  =====================================
dspace6    ``Lab/<collection>`` (dirs = items)  ``Lab/Data/<item>``
dspace7    ``Lab/<collection>`` (dirs = items)  ``Lab/Data/<item>``
rspace     ``Gallery/Documents/<folder>``       ``Gallery/Documents/<folder>``
docspace   ``My documents/<folder>``            ``My documents/<folder>``
opus2      ``Lab/<folder>`` (project Lab)       ``Lab/<folder>``
=========  ===================================  =====================================

What a backend cannot do with the files of these places is declared here, once, with the
reason (``Target.missing``: RSpace's Gallery and Opus 2 cannot rename or delete a file, Opus 2
has no login to renew); a scenario that needs it calls ``Target.require`` and is skipped with
that reason, or leaves just that step out where ``Target.can`` says so. Emulators, credentials
and download requests come from the conformance adapters (``tests/conformance/adapters.py``).
"""

from __future__ import annotations

import errno
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs

import pytest

from docfs.emulators.base import Emulator, EmulatorServer, LoggedRequest
from docfs.emulators.docspace import DocSpaceEmulator
from docfs.emulators.dspace6 import DSpace6Emulator
from docfs.emulators.dspace7 import DSpace7Emulator
from docfs.emulators.opus2 import Opus2Emulator
from docfs.emulators.rspace import DEFAULT_API_KEY as RSPACE_KEY
from docfs.emulators.rspace import DEFAULT_PASSWORD as RSPACE_PASSWORD
from docfs.emulators.rspace import DEFAULT_USERNAME as RSPACE_USER
from docfs.emulators.rspace import RSpaceEmulator
from tests.conformance.adapters import (
    Adapter,
    DocSpaceAdapter,
    DSpace6Adapter,
    DSpace7Adapter,
    Opus2Adapter,
    RSpaceAdapter,
)
from tests.conftest import ADMIN

#: every fault plan and subprocess bound in this suite is short: the whole suite runs in CI
TIMEOUT = "3"


@dataclass(frozen=True)
class Remote:
    """How ``docfs mount`` names a repository: the source, extra options, the environment."""

    source: str  # ``TYPE:URL`` or ``NAME:/``
    options: tuple[str, ...] = ()
    secrets: Mapping[str, str] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class Place:
    """A directory in the mount (components from the mount root) and its id on the server."""

    path: tuple[str, ...]
    ident: Any

    def child(self, name: str, ident: Any) -> Place:
        return Place((*self.path, name), ident)


def clean_env(secrets: Mapping[str, str]) -> dict[str, str]:
    """This environment without the developer's own DOCFS_* settings, plus ``secrets``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCFS_")}
    env.update(secrets)
    return env


class Own:
    """``Daemon.start(credentials=OWN)``: the remote's own secrets (the default)."""


OWN = Own()


class Daemon:
    """One ``docfs mount`` process; can be stopped cleanly, killed, and started again."""

    def __init__(
        self, url: str, path: Path, cache: Path, log: Path, remote: Remote | None = None
    ) -> None:
        self.url, self.path, self.cache, self.log = url, path, cache, log
        self.remote = remote or Remote(
            f"dspace6:{url}", secrets={"DOCFS_USER": ADMIN[0], "DOCFS_PASSWORD": ADMIN[1]}
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def sibling(self, name: str) -> Daemon:
        """Another daemon of the same remote with its own mount point, cache and log."""
        root = self.path.parent
        return Daemon(
            self.url, root / name, root / f"{name}-cache", root / f"{name}.log", self.remote
        )

    def command(self, *args: str) -> list[str]:
        return [
            sys.executable,
            "-m",
            "docfs",
            "--log-level",
            "debug",
            "mount",
            self.remote.source,
            str(self.path),
            "--cache-dir",
            str(self.cache),
            "--timeout",
            TIMEOUT,
            *self.remote.options,
            *args,
        ]

    @staticmethod
    def env(credentials: tuple[str, str] | None = ADMIN) -> dict[str, str]:
        """A user and password in DOCFS_USER / DOCFS_PASSWORD (None: no credentials)."""
        if credentials is None:
            return clean_env({})
        return clean_env({"DOCFS_USER": credentials[0], "DOCFS_PASSWORD": credentials[1]})

    def start(self, *args: str, credentials: tuple[str, str] | Own | None = OWN) -> Daemon:
        """Mount and return once the mount point is served (``credentials``: a user and
        password instead of the remote's own secrets; None: none at all)."""
        if isinstance(credentials, Own):
            env = clean_env(self.remote.secrets)
        else:
            env = self.env(credentials)
        try:
            self.path.mkdir(parents=True)
        except OSError as exc:
            # it exists; or it is a stale mount point (ENOTCONN), which ``docfs mount`` cleans
            if exc.errno not in (errno.EEXIST, errno.ENOTCONN):
                raise
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(self.command(*args), env=env, stdout=log, stderr=log)
        deadline = time.monotonic() + 20
        while not self.mounted():
            if self.proc.poll() is not None:
                raise RuntimeError(f"docfs exited early:\n{self.log_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"mount did not appear:\n{self.log_text()[-3000:]}")
            time.sleep(0.05)
        return self

    def mounted(self) -> bool:
        """Served by a live daemon (a dead daemon's mount point answers ENOTCONN)."""
        try:
            # statfs reaches the daemon; stat may be answered from the kernel's attribute cache
            os.statvfs(self.path)
        except OSError:
            return False
        return os.path.ismount(self.path)

    def kill(self) -> None:
        """SIGKILL: no unmount, no cleanup, exactly what a crash leaves behind."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)
        self.proc = None

    def stop(self) -> None:
        if self.proc is None:
            return
        subprocess.run(["fusermount3", "-u", str(self.path)], check=False, capture_output=True)
        try:
            self.proc.wait(30)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(5)
            self.proc = None

    def cleanup(self) -> None:
        """Whatever state the test left: no process, no mount."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None
        subprocess.run(
            ["fusermount3", "-u", "-z", str(self.path)], check=False, capture_output=True
        )

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def at(self, place: Place, *names: str) -> Path:
        """The local path of ``place`` (and names below it) in this mount."""
        return self.path.joinpath(*place.path, *names)


class Target:
    """One repository type, its emulator served on loopback, and the daemons of one test."""

    name: ClassVar[str]
    adapter: ClassVar[Adapter]
    #: (method, path regex) of the request that carries a new file's bytes
    upload: ClassVar[tuple[str, str]]
    #: (method, path regex) of a request that renames a file (None: the API has none)
    rename: ClassVar[tuple[str, str] | None]
    #: (method, path regex) of a login, token grant or renewal (None: a static token)
    login: ClassVar[tuple[str, str] | None]
    #: the flaky scenario's tree: directories by files
    flaky_tree: ClassVar[tuple[int, int]] = (2, 10)
    #: what these places cannot do, and why: capability → reason (``require`` skips with it)
    missing: ClassVar[dict[str, str]] = {}
    #: what a refused login prints (lower case fragments, all required)
    refusal: ClassVar[tuple[str, ...]]

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.e = self.make_emulator()
        self.server = EmulatorServer(self.e)
        self.daemons: list[Daemon] = []
        self._parents: dict[str, Any] = {}
        #: an origin in front of the emulator (a fault proxy) that mounts made from now on use
        self.front: str | None = None

    # ---- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> Target:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            for d in self.daemons:
                d.cleanup()
        finally:
            self.server.stop()

    def make_emulator(self) -> Emulator:
        return self.adapter.emulator()

    def down(self) -> None:
        """Stop serving: connection refused from now on (the emulator keeps its state)."""
        self.server.stop()

    def up(self) -> None:
        """Serve the same emulator on the same port again."""
        self.server = EmulatorServer(self.e, port=self.server.port)
        self.server.start()

    def require(self, capability: str) -> None:
        """Skip the scenario, naming the capability and why this backend lacks it."""
        if capability in self.missing:
            pytest.skip(f"{self.name} cannot {capability}: {self.missing[capability]}")

    def can(self, capability: str) -> bool:
        return capability not in self.missing

    # ---- mounting ----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The URL a mount uses: the emulator's, or through ``front`` when one is set."""
        url = self.adapter.remote_url(self.server)
        return url if self.front is None else url.replace(self.server.url, self.front, 1)

    def remote(self, *, login: bool = False) -> Remote:
        """The remote a user mounts; ``login``: credentials the server can expire and renew."""
        creds = self.adapter.credentials()
        secrets = (
            {"DOCFS_TOKEN": creds.token}
            if creds.token
            else {"DOCFS_USER": creds.user or "", "DOCFS_PASSWORD": creds.password or ""}
        )
        return Remote(f"{self.name}:{self.url}", secrets=secrets)

    def wrong_remote(self) -> tuple[Remote, str]:
        """The remote with a wrong secret, and that secret (it must never be printed)."""
        raise NotImplementedError

    def daemon(
        self, name: str = "mnt", *, login: bool = False, remote: Remote | None = None
    ) -> Daemon:
        """A (not yet started) daemon for ``<tmp>/<name>``; cleaned up after the test."""
        d = Daemon(
            self.url,
            self.tmp_path / name,
            self.tmp_path / f"{name}-cache",
            self.tmp_path / f"{name}.log",
            remote or self.remote(login=login),
        )
        self.daemons.append(d)
        return d

    def sibling(self, daemon: Daemon, name: str) -> Daemon:
        d = daemon.sibling(name)
        self.daemons.append(d)
        return d

    def config(self, name: str, body: str) -> Path:
        path = self.tmp_path / f"{name}.toml"
        path.write_text(body)
        path.chmod(0o600)
        return path

    # ---- places and the server's state --------------------------------------------------------

    def container(self, name: str) -> Place:
        """A fresh directory in which mkdir makes directories that take files."""
        raise NotImplementedError

    def folder(
        self, name: str, files: Mapping[str, bytes] | None = None, *, private: bool = False
    ) -> Place:
        """A fresh directory holding ``files`` (``private``: only the mount's user reads it)."""
        raise NotImplementedError

    def entries(self, place: Place) -> list[tuple[str, bytes]]:
        """The files directly in ``place`` on the server, as (name, bytes), duplicates kept."""
        raise NotImplementedError

    def subdirs(self, place: Place) -> list[Place]:
        """The directories directly in ``place`` on the server, duplicates kept."""
        raise NotImplementedError

    def delete(self, place: Place, name: str) -> None:
        """Delete a file behind the mount's back."""
        raise NotImplementedError

    def expire(self) -> None:
        """Make every login session or token invalid, as a server restart or timeout does."""
        raise NotImplementedError

    def files(self, place: Place) -> dict[str, bytes]:
        return dict(self.entries(place))

    def tree(self, place: Place) -> dict[str, bytes]:
        """``dir/name`` → bytes for the directories of a container."""
        return {
            f"{sub.path[-1]}/{name}": data
            for sub in self.subdirs(place)
            for name, data in self.entries(sub)
        }

    def duplicates(self, place: Place) -> list[str]:
        """Names that exist more than once: directories of a container or files in one."""
        subs = self.subdirs(place)
        found = [p.path[-1] for p in subs]
        dups = sorted({n for n in found if found.count(n) > 1})
        for sub in subs:
            names = [n for n, _ in self.entries(sub)]
            dups += sorted({f"{sub.path[-1]}/{n}" for n in names if names.count(n) > 1})
        return dups

    def sent_names(self) -> list[str]:
        """File names that uploads carried, where the request log shows them (DSpace 6)."""
        return []

    # ---- the request log ---------------------------------------------------------------------

    def requests(self, spec: tuple[str, str] | None) -> list[LoggedRequest]:
        return [] if spec is None else self.e.requests(*spec)

    def uploads(self) -> int:
        return len(self.requests(self.upload))

    def renames(self) -> int:
        return len(self.requests(self.rename))

    def logins(self) -> int:
        return len([r for r in self.requests(self.login) if r.status < 400])

    def downloads(self) -> list[LoggedRequest]:
        return self.e.requests("GET", self.adapter.download_path)

    def plan_upload_fault(self, **fault: Any) -> None:
        method, path = self.upload
        self.e.plan_fault(method=method, path=path, **fault)


# ---- DSpace ------------------------------------------------------------------------------------


class DSpace6Target(Target):
    name = "dspace6"
    adapter = DSpace6Adapter()
    upload = ("POST", r"/items/[^/]+/bitstreams$")
    rename = ("PUT", r"^/rest/bitstreams/[^/]+$")
    login = ("POST", r"^/rest/login$")
    flaky_tree = (4, 25)
    refusal = ("refused the login", "wrong e-mail or password")
    e: DSpace6Emulator

    def wrong_remote(self) -> tuple[Remote, str]:
        wrong = "not-the-password-42"
        secrets = {"DOCFS_USER": ADMIN[0], "DOCFS_PASSWORD": wrong}
        return Remote(f"{self.name}:{self.url}", secrets=secrets), wrong

    def _collection(self, name: str, private: bool = False) -> str:
        if "lab" not in self._parents:
            self._parents["lab"] = self.e.add_community("Lab", public=not private)
        return self.e.add_collection(name, self._parents["lab"], public=not private)

    def container(self, name: str) -> Place:
        return Place(("Lab", name), self._collection(name))

    def folder(
        self, name: str, files: Mapping[str, bytes] | None = None, *, private: bool = False
    ) -> Place:
        # private: an anonymous (expired) session cannot even see the collection
        title = "Private" if private else "Data"
        if title not in self._parents:
            self._parents[title] = self._collection(title, private)
        item = self.e.add_item(self._parents[title], name, public=not private)
        for n, data in (files or {}).items():
            self.e.add_bitstream(item, n, data, public=not private)
        return Place(("Lab", title, name), item)

    def entries(self, place: Place) -> list[tuple[str, bytes]]:
        return [
            (b["name"], self.e.bitstream_data(b["uuid"]))
            for b in self.e.bitstreams_of(place.ident)
            if b["bundle"] == "ORIGINAL"
        ]

    def subdirs(self, place: Place) -> list[Place]:
        return [place.child(i["title"], i["uuid"]) for i in self.e.items_of(place.ident)]

    def delete(self, place: Place, name: str) -> None:
        (uuid,) = [b["uuid"] for b in self.e.bitstreams_of(place.ident) if b["name"] == name]
        self.e.delete_object(uuid)

    def expire(self) -> None:
        self.e.expire_sessions()

    def sent_names(self) -> list[str]:
        # DSpace 6 takes a new bitstream's name in the query of its upload
        return [n for r in self.requests(self.upload) for n in parse_qs(r.query).get("name", [])]


class DSpace7Target(Target):
    name = "dspace7"
    adapter = DSpace7Adapter()
    upload = ("POST", r"/core/bundles/[^/]+/bitstreams$")
    rename = ("PATCH", r"/core/bitstreams/[^/]+$")
    login = ("POST", r"/authn/login$")
    refusal = ("refused the login", "wrong e-mail or password")
    e: DSpace7Emulator

    def wrong_remote(self) -> tuple[Remote, str]:
        wrong = "not-the-password-42"
        secrets = {"DOCFS_USER": ADMIN[0], "DOCFS_PASSWORD": wrong}
        return Remote(f"{self.name}:{self.url}", secrets=secrets), wrong

    def _collection(self, name: str) -> str:
        if "lab" not in self._parents:
            self._parents["lab"] = self.e.add_community("Lab")
        return self.e.add_collection(name, self._parents["lab"])

    def container(self, name: str) -> Place:
        return Place(("Lab", name), self._collection(name))

    def folder(
        self, name: str, files: Mapping[str, bytes] | None = None, *, private: bool = False
    ) -> Place:
        if "data" not in self._parents:
            self._parents["data"] = self._collection("Data")
        item = self.e.add_item(self._parents["data"], name)
        streams = [self.e.add_bitstream(item, n, data) for n, data in (files or {}).items()]
        if private:
            # readers = []: administrators only; an expired token reads as anonymous
            for uuid in (item, *streams):
                self.e.restrict(uuid, [])
        return Place(("Lab", "Data", name), item)

    def entries(self, place: Place) -> list[tuple[str, bytes]]:
        return [(n or "", self.e.content(u)) for u, n in self.e.bitstreams(place.ident)]

    def subdirs(self, place: Place) -> list[Place]:
        return [place.child(self.e.name_of(i) or "", i) for i in self.e.items_in(place.ident)]

    def duplicates(self, place: Place) -> list[str]:
        dups = super().duplicates(place)
        # items that never reached the archive (a lost answer to a create) count as well
        for sub in self.subdirs(place):
            owned = [
                i
                for i in self.e.find(sub.path[-1], kind="item")
                if self.e.item_state(i)["owning"] == place.ident
            ]
            if len(owned) > 1 and sub.path[-1] not in dups:
                dups.append(sub.path[-1])
        return dups

    def delete(self, place: Place, name: str) -> None:
        (uuid,) = [u for u, n in self.e.bitstreams(place.ident) if n == name]
        self.e.delete(uuid)

    def expire(self) -> None:
        self.e.expire_sessions()


# ---- RSpace ------------------------------------------------------------------------------------

#: an OAuth client for the password grant (an API key never expires: nothing to renew)
RSPACE_CLIENT = ("docfs-reliability", "client-secret-7f3a")


class RSpaceTarget(Target):
    """Files in Gallery folders of the Documents section (``.txt`` belongs there)."""

    name = "rspace"
    adapter = RSpaceAdapter()
    upload = ("POST", r"^/api/v1/files$")
    # the API has no rename (nor delete, nor move) of a Gallery file
    rename = None
    login = ("POST", r"^/oauth/token$")
    missing = {
        "rename files": "the RSpace API cannot rename a Gallery file (EPERM, no request)",
        "delete files": "the RSpace API cannot delete a Gallery file (EPERM, no request)",
    }
    refusal = ("refused the api key",)
    e: RSpaceEmulator

    def make_emulator(self) -> Emulator:
        return RSpaceEmulator(oauth_clients=dict([RSPACE_CLIENT]))

    def remote(self, *, login: bool = False) -> Remote:
        # a named remote: only a configuration lifts the client's pacing to hosted RSpace's
        # 15 requests / 15 s, which would stretch each scenario to minutes
        body = (
            "[remotes.lab]\n"
            'type = "rspace"\n'
            f'url = "{self.url}"\n'
            'token = { env = "DOCFS_TOKEN" }\n'
            "requests_per_minute = 60000\n"
            "concurrency = 8\n"
        )
        if login:
            # OAuth: a password grant with the client's id and secret as the "token"
            body += f'user = "{RSPACE_USER}"\npassword = {{ env = "DOCFS_PASSWORD" }}\n'
            config = self.config("rspace-oauth", body)
            secrets = {"DOCFS_TOKEN": ":".join(RSPACE_CLIENT), "DOCFS_PASSWORD": RSPACE_PASSWORD}
            return Remote("lab:/", ("--config", str(config)), secrets)
        config = self.config("rspace", body)
        return Remote("lab:/", ("--config", str(config)), {"DOCFS_TOKEN": RSPACE_KEY})

    def wrong_remote(self) -> tuple[Remote, str]:
        wrong = "wrongKeyButWellFormed123"
        remote = self.remote()
        return Remote(remote.source, remote.options, {"DOCFS_TOKEN": wrong}), wrong

    def _section(self) -> int:
        return self.e.folder_id("Documents")

    def container(self, name: str) -> Place:
        return Place(("Gallery", "Documents", name), self.e.add_folder(self._section(), name))

    def folder(
        self, name: str, files: Mapping[str, bytes] | None = None, *, private: bool = False
    ) -> Place:
        # every Gallery folder is private to its owner: nothing to restrict
        place = self.container(name)
        for n, data in (files or {}).items():
            self.e.add_file(place.ident, n, data)
        return place

    def entries(self, place: Place) -> list[tuple[str, bytes]]:
        return [
            (c["name"], self.e.file_data(c["id"]))
            for c in self.e.children(place.ident)
            if c["kind"] == "MEDIA"
        ]

    def subdirs(self, place: Place) -> list[Place]:
        return [
            place.child(c["name"], c["id"])
            for c in self.e.children(place.ident)
            if c["kind"] != "MEDIA"
        ]

    def delete(self, place: Place, name: str) -> None:
        (ident,) = [c["id"] for c in self.e.children(place.ident) if c["name"] == name]
        self.e.delete(ident)

    def expire(self) -> None:
        self.e.expire_tokens()


# ---- DocSpace ----------------------------------------------------------------------------------


class DocSpaceTarget(Target):
    """Folders in the owner's My documents (``rm`` moves to the Trash, as by default)."""

    name = "docspace"
    adapter = DocSpaceAdapter()
    upload = ("POST", r"^/ChunkedUploader\.ashx$|^/api/2\.0/files/\d+/(upload|file)$")
    rename = ("PUT", r"^/api/2\.0/files/file/\d+$")
    login = ("POST", r"^/api/2\.0/authentication$")
    refusal = ("refused the login", "wrong e-mail or password")
    e: DocSpaceEmulator

    def wrong_remote(self) -> tuple[Remote, str]:
        wrong = "not-the-password-42"
        secrets = {"DOCFS_USER": DocSpaceAdapter.user[0], "DOCFS_PASSWORD": wrong}
        return Remote(f"{self.name}:{self.url}", secrets=secrets), wrong

    def container(self, name: str) -> Place:
        owner = DocSpaceAdapter.user[0]
        folder = self.e.add_folder(self.e.my_documents_id(owner), name, owner=owner)
        return Place(("My documents", name), folder)

    def folder(
        self, name: str, files: Mapping[str, bytes] | None = None, *, private: bool = False
    ) -> Place:
        # My documents is private to its owner
        place = self.container(name)
        for n, data in (files or {}).items():
            self.e.add_file(place.ident, n, data, owner=DocSpaceAdapter.user[0])
        return place

    def entries(self, place: Place) -> list[tuple[str, bytes]]:
        return [
            (title, self.e.file_content(ident))
            for kind, ident, title in self.e.children(place.ident)
            if kind == "file"
        ]

    def subdirs(self, place: Place) -> list[Place]:
        return [
            place.child(title, ident)
            for kind, ident, title in self.e.children(place.ident)
            if kind == "folder"
        ]

    def delete(self, place: Place, name: str) -> None:
        (ident,) = self.e.find(place.ident, name)
        self.e.remove_file(ident)

    def expire(self) -> None:
        self.e.expire_tokens()


# ---- Opus 2 ------------------------------------------------------------------------------------


class Opus2Target(Target):
    """Folders in the project ``Lab`` (the tenant's default wire profile, unpaced)."""

    name = "opus2"
    adapter = Opus2Adapter()
    upload = ("POST", r"^/projects/[^/]+/documents$")
    # renaming and deleting documents are optional endpoints the default profile lacks
    rename = None
    login = None
    missing = {
        "rename files": "the Opus 2 documents API has no rename (EPERM, no request)",
        "delete files": "the Opus 2 documents API has no delete (EPERM, no request)",
        "renew a login": "Opus 2 authenticates with a static API token: no session to renew",
    }
    refusal = ("refused the api token",)
    e: Opus2Emulator

    def make_emulator(self) -> Emulator:
        return Opus2Emulator(rate_limit=None)

    def remote(self, *, login: bool = False) -> Remote:
        # a named remote: the profile (and with it the tenant's rate limit that the client
        # paces itself to, 50 a minute by default) lives in a remote's configuration
        profile = self.tmp_path / "opus2-profile.json"
        profile.write_text(json.dumps({"rate_limit": 0}))
        config = self.config(
            "opus2",
            "[remotes.tenant]\n"
            'type = "opus2"\n'
            f'url = "{self.url}"\n'
            'token = { env = "DOCFS_TOKEN" }\n'
            f'profile = "{profile.name}"\n',
        )
        return Remote("tenant:/", ("--config", str(config)), {"DOCFS_TOKEN": self.e.default_token})

    def wrong_remote(self) -> tuple[Remote, str]:
        wrong = "opus2-token-that-does-not-exist"
        remote = self.remote()
        return Remote(remote.source, remote.options, {"DOCFS_TOKEN": wrong}), wrong

    def _project(self) -> str:
        if "project" not in self._parents:
            self._parents["project"] = self.e.add_project("Lab")
        return str(self._parents["project"])

    def container(self, name: str) -> Place:
        return Place(("Lab", name), self.e.add_folder(self._project(), name))

    def folder(
        self, name: str, files: Mapping[str, bytes] | None = None, *, private: bool = False
    ) -> Place:
        # a project is visible to its members only
        place = self.container(name)
        for n, data in (files or {}).items():
            self.e.add_document(self._project(), n, data, folder_id=place.ident)
        return place

    def entries(self, place: Place) -> list[tuple[str, bytes]]:
        return [
            (d["name"], self.e.document(d["id"])["content"])
            for d in self.e.documents(self._project(), place.ident)
        ]

    def subdirs(self, place: Place) -> list[Place]:
        return [
            place.child(f["name"], f["id"])
            for f in self.e.folders(self._project())
            if f["parentId"] == place.ident
        ]

    def delete(self, place: Place, name: str) -> None:
        (ident,) = [
            d["id"] for d in self.e.documents(self._project(), place.ident) if d["name"] == name
        ]
        self.e.delete_document(ident)

    def expire(self) -> None:
        raise AssertionError("Opus 2 has no session to expire")


TARGETS: list[type[Target]] = [
    DSpace6Target,
    DSpace7Target,
    RSpaceTarget,
    DocSpaceTarget,
    Opus2Target,
]

#: rsync's temporary names and docfs's other write-then-rename patterns
TEMP_NAME = re.compile(r"^\..+\.[A-Za-z0-9]{6}$|\.tmp\d*$|\.part$")
