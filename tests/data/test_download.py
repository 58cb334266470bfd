"""Downloads against a real HTTP server on 127.0.0.1 serving archives the tests build.

The server (``http.server`` in a thread, ephemeral port) honours ``Range`` requests, logs every
request, and can be told to cut its first answer short or to ignore ranges. Test-only adapter
classes declare the URLs, so nothing here depends on the bundled dataset adapters.
"""

from __future__ import annotations

import hashlib
import io
import stat
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Dict, List, Optional

import pytest

from unihema.cli import main
from unihema.data.catalog import ADAPTERS, DatasetAdapter
from unihema.data.download import (STATE_DIR, AccessRequired, DownloadError,
                                   UnsafeArchiveError, download, safe_extract)


# ----------------------------------------------------------------------------- server
class _Server:
    def __init__(self) -> None:
        self.files: Dict[str, bytes] = {}
        self.requests: List[tuple] = []  # (path, Range header or None, status)
        self.truncate_next: Dict[str, int] = {}  # path -> bytes to send before hanging up
        self.ignore_range = False
        state = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep pytest output clean
                pass

            def do_GET(self) -> None:
                body = state.files.get(self.path)
                rng = self.headers.get("Range")
                if body is None:
                    state.requests.append((self.path, rng, 404))
                    self.send_error(404)
                    return
                start, status = 0, 200
                if rng and not state.ignore_range:
                    start = int(rng.split("=")[1].split("-")[0])
                    if start >= len(body):
                        state.requests.append((self.path, rng, 416))
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(body)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    status = 206
                state.requests.append((self.path, rng, status))
                payload = body[start:]
                self.send_response(status)
                if status == 206:
                    self.send_header("Content-Range",
                                     f"bytes {start}-{len(body) - 1}/{len(body)}")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                cut = state.truncate_next.pop(self.path, None)
                self.wfile.write(payload if cut is None else payload[:cut])
                self.wfile.flush()
                self.close_connection = True

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,),
                                       daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def gets(self, path: str) -> List[tuple]:
        return [r for r in self.requests if r[0] == path]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def server():
    s = _Server()
    yield s
    s.close()


def _adapter(entries=(), access: str = "") -> type:
    class Fixture(DatasetAdapter):
        """<root>/data/a.txt and data/sub/b.txt (test fixture)."""

        name = "download_fixture"
        tasks = ("classify",)
        license = "CC0-1.0"
        citation = "test fixture"
        url = "http://127.0.0.1/"
        downloads = tuple(entries)

    Fixture.access = access
    return Fixture


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ----------------------------------------------------------------------------- archives
FILES = {"data/a.txt": b"alpha\n", "data/sub/b.txt": b"beta\n" * 1000}


def _zip(files=FILES, links: Optional[Dict[str, str]] = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(zipfile.ZipInfo(name), data)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
    return buf.getvalue()


def _tar(files=FILES, mode="w:gz", extra=()) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for info in extra:
            tf.addfile(info)
    return buf.getvalue()


def _link(name: str, target: str, kind=tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


def _files_under(path: Path) -> List[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


# ----------------------------------------------------------------------------- good archives
@pytest.mark.parametrize("filename,build", [("set.zip", _zip), ("set.tar.gz", _tar),
                                            ("set.tgz", _tar)])
def test_archive_verified_extracted_and_rerun_skips(server, tmp_path, filename, build):
    blob = build()
    server.files["/" + filename] = blob
    cls = _adapter([{"url": server.url("/" + filename), "sha256": _sha(blob),
                     "filename": filename}])
    target = tmp_path / "root"
    (fetched,) = download(cls, target, progress=False)
    assert not fetched.skipped and fetched.sha256 == _sha(blob)
    assert fetched.extracted == ["data"]
    for name, data in FILES.items():
        assert (target / name).read_bytes() == data
    assert (target / STATE_DIR / f"{filename}.done").is_file()
    assert not list(target.glob(".unihema-extract-*"))  # temporary folder removed
    assert len(server.gets("/" + filename)) == 1

    (again,) = download(cls, target, progress=False)
    assert again.skipped and again.extracted == ["data"]
    assert len(server.gets("/" + filename)) == 1  # nothing fetched the second time


def test_plain_file_without_checksum_and_safe_inner_link(server, tmp_path):
    blob = _tar(extra=[_link("data/alias.txt", "sub/b.txt")])
    server.files["/set.tar"] = blob
    server.files["/labels.npz"] = b"not really an npz"
    cls = _adapter([{"url": server.url("/set.tar"), "sha256": None, "filename": "set.tar"},
                    {"url": server.url("/labels.npz"), "sha256": None,
                     "filename": "labels.npz"}])
    target = tmp_path / "root"
    archive, plain = download(cls, target, progress=False)
    assert archive.sha256 == _sha(blob)  # computed and recorded even when not declared
    assert (target / "data" / "alias.txt").is_symlink()
    assert (target / "data" / "alias.txt").read_bytes() == FILES["data/sub/b.txt"]
    assert plain.path == target / "labels.npz" and plain.extracted == []
    assert plain.path.read_bytes() == b"not really an npz"


# ----------------------------------------------------------------------------- resuming
def test_interrupted_download_resumes_with_range(server, tmp_path):
    blob = _zip()
    server.files["/set.zip"] = blob
    cls = _adapter([{"url": server.url("/set.zip"), "sha256": _sha(blob),
                     "filename": "set.zip"}])
    target = tmp_path / "root"
    cut = len(blob) // 3
    server.truncate_next["/set.zip"] = cut
    with pytest.raises(DownloadError, match="interrupted"):
        download(cls, target, progress=False, retries=0)
    part = target / STATE_DIR / "set.zip.part"
    assert part.read_bytes() == blob[:cut]
    assert not (target / "data").exists()

    (fetched,) = download(cls, target, progress=False)
    assert not fetched.skipped
    assert server.gets("/set.zip")[-1] == ("/set.zip", f"bytes={cut}-", 206)
    assert (target / "data" / "sub" / "b.txt").read_bytes() == FILES["data/sub/b.txt"]
    assert not part.exists()


def test_dropped_connection_is_resumed_within_one_call(server, tmp_path):
    blob = _tar()
    server.files["/set.tgz"] = blob
    server.truncate_next["/set.tgz"] = 100
    cls = _adapter([{"url": server.url("/set.tgz"), "sha256": _sha(blob),
                     "filename": "set.tgz"}])
    download(cls, tmp_path / "root", progress=False, retries=2)
    assert [r[1] for r in server.gets("/set.tgz")] == [None, "bytes=100-"]
    assert (tmp_path / "root" / "data" / "a.txt").read_bytes() == FILES["data/a.txt"]


def test_server_ignoring_range_restarts_cleanly(server, tmp_path):
    blob = _zip()
    server.files["/set.zip"] = blob
    server.ignore_range = True
    target = tmp_path / "root"
    (target / STATE_DIR).mkdir(parents=True)
    (target / STATE_DIR / "set.zip.part").write_bytes(b"stale bytes of another file")
    cls = _adapter([{"url": server.url("/set.zip"), "sha256": _sha(blob),
                     "filename": "set.zip"}])
    (fetched,) = download(cls, target, progress=False)
    assert server.gets("/set.zip") == [("/set.zip", "bytes=27-", 200)]
    assert fetched.path.read_bytes() == blob  # the stale prefix was discarded, not kept


# ----------------------------------------------------------------------------- failures
def test_checksum_mismatch_keeps_bad_file_and_names_digests(server, tmp_path):
    blob = _zip()
    server.files["/set.zip"] = blob
    wrong = "0" * 64
    cls = _adapter([{"url": server.url("/set.zip"), "sha256": wrong, "filename": "set.zip"}])
    target = tmp_path / "root"
    with pytest.raises(DownloadError) as err:
        download(cls, target, progress=False)
    msg = str(err.value)
    assert f"expected {wrong}" in msg and f"got {_sha(blob)}" in msg
    state = target / STATE_DIR
    assert (state / "set.zip.bad").read_bytes() == blob
    assert not (state / "set.zip").exists() and not (state / "set.zip.done").exists()
    assert not (target / "data").exists()


def test_http_error_is_reported(server, tmp_path):
    cls = _adapter([{"url": server.url("/missing.zip"), "sha256": None,
                     "filename": "missing.zip"}])
    with pytest.raises(DownloadError, match="HTTP 404"):
        download(cls, tmp_path / "root", progress=False)


@pytest.mark.parametrize("entry,reason", [
    ({"url": "ftp://host/x.zip", "sha256": None, "filename": "x.zip"}, "http"),
    ({"url": "http://127.0.0.1/x.zip", "sha256": None, "filename": "../x.zip"}, "plain file"),
    ({"url": "http://127.0.0.1/x.zip", "sha256": "abc", "filename": "x.zip"}, "64 hex"),
])
def test_bad_declarations_are_refused(tmp_path, entry, reason):
    with pytest.raises(Exception, match=reason):
        download(_adapter([entry]), tmp_path / "root", progress=False)


# ----------------------------------------------------------------------------- malicious archives
def _device() -> tarfile.TarInfo:
    info = tarfile.TarInfo("data/null")
    info.type = tarfile.CHRTYPE
    info.devmajor, info.devminor = 1, 3
    return info


MALICIOUS = {
    "tar-absolute": ("evil.tar", lambda: _tar({"/tmp/unihema-evil.txt": b"x"}, "w"),
                     "absolute path"),
    "tar-dotdot": ("evil.tar.gz", lambda: _tar({"data/../../outside/evil.txt": b"x"}),
                   "'..'"),
    "tar-symlink-escape": ("evil.tgz", lambda: _tar(extra=[_link("data/esc", "../../outside")]),
                           "outside the target"),
    "tar-symlink-absolute": ("evil.tgz", lambda: _tar(extra=[_link("data/esc", "/etc")]),
                             "absolute path outside"),
    "tar-hardlink-escape": ("evil.tar",
                            lambda: _tar(mode="w",
                                         extra=[_link("data/hard", "../outside/secret.txt",
                                                      tarfile.LNKTYPE)]),
                            "hardlink 'data/hard'"),
    "tar-write-through-link": ("evil.tar", lambda: _through_link_tar(), "lies below the link"),
    "tar-device": ("evil.tar", lambda: _tar(mode="w", extra=[_device()]), "device file"),
    "zip-absolute": ("evil.zip", lambda: _zip({"/tmp/unihema-evil.txt": b"x"}),
                     "absolute path"),
    "zip-dotdot": ("evil.zip", lambda: _zip({"../outside/evil.txt": b"x"}), "'..'"),
    "zip-symlink-escape": ("evil.zip", lambda: _zip(links={"data/esc": "../../outside"}),
                           "outside the target"),
}


def _through_link_tar() -> bytes:
    # "data/up" points to the root (inside), but "data/up/../.." tricks would follow it
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        tf.addfile(_link("data/up", ".."))
        info = tarfile.TarInfo("data/up/x.txt")
        info.size = 1
        tf.addfile(info, io.BytesIO(b"x"))
    return buf.getvalue()


@pytest.mark.parametrize("case", sorted(MALICIOUS))
def test_malicious_archive_is_refused(server, tmp_path, case):
    filename, build, reason = MALICIOUS[case]
    blob = build()
    server.files["/" + filename] = blob
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("keep me")
    target = tmp_path / "root"
    cls = _adapter([{"url": server.url("/" + filename), "sha256": _sha(blob),
                     "filename": filename}])
    with pytest.raises(UnsafeArchiveError) as err:
        download(cls, target, progress=False)
    msg = str(err.value)
    assert "refused" in msg and reason in msg and filename in msg
    # nothing outside the target, nothing extracted inside it, no completion marker
    assert _files_under(outside) == ["secret.txt"]
    assert (outside / "secret.txt").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["outside", "root"]
    assert [p.name for p in target.iterdir()] == [STATE_DIR]
    assert not (target / STATE_DIR / f"{filename}.done").exists()
    assert not Path("/tmp/unihema-evil.txt").exists()


def test_safe_extract_refuses_without_download(tmp_path):
    archive = tmp_path / "evil.zip"
    archive.write_bytes(_zip({"../evil.txt": b"x"}))
    with pytest.raises(UnsafeArchiveError, match="'../evil.txt'"):
        safe_extract(archive, tmp_path / "root")
    assert not (tmp_path / "evil.txt").exists()


# ----------------------------------------------------------------------------- access and CLI
@pytest.fixture()
def registered(monkeypatch):
    """Register a test adapter; the bundled adapter plugins are not imported (not needed)."""
    import unihema.registry

    monkeypatch.setattr(unihema.registry, "_plugins_loaded", True)
    added = []

    def add(cls):
        ADAPTERS.register("download_fixture", cls)
        added.append("download_fixture")
        return cls

    yield add
    for name in added:
        ADAPTERS.unregister(name)


def test_login_only_source_prints_access_and_layout(tmp_path, registered, capsys):
    cls = registered(_adapter(access="Register at https://example.org/form, then unzip."))
    with pytest.raises(AccessRequired, match="Register at"):
        download(cls, tmp_path / "root")
    assert main(["data", "download", "download_fixture", "--to", str(tmp_path / "r")]) == 2
    out = capsys.readouterr().out
    assert "Register at https://example.org/form" in out
    assert "data/sub/b.txt" in out  # the expected layout (the adapter docstring)
    assert not (tmp_path / "r").exists()


def test_cli_download(server, tmp_path, registered, capsys):
    blob = _zip()
    server.files["/set.zip"] = blob
    registered(_adapter([{"url": server.url("/set.zip"), "sha256": _sha(blob),
                          "filename": "set.zip"}]))
    target = tmp_path / "root"
    assert main(["data", "download", "download_fixture", "--to", str(target),
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "set.zip" in out and "unihema data check download_fixture" in out
    assert (target / "data" / "a.txt").read_bytes() == FILES["data/a.txt"]
    assert main(["data", "download", "download_fixture", "--to", str(target),
                 "--no-progress"]) == 0
    assert "already complete" in capsys.readouterr().out
