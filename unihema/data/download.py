"""``unihema data download``: fetch a dataset from its declared direct URLs, safely.

An adapter that can be downloaded without a login declares its files::

    downloads = ({"url": "https://.../BCCD_Dataset-master.zip",
                  "sha256": "9f2c...",            # or None when not known yet
                  "filename": "BCCD_Dataset-master.zip"},)

Optional keys of an entry: ``"extract"`` (bool; default: true for ``.zip``, ``.tar``,
``.tar.gz``, ``.tgz``, ``.tar.bz2``, ``.tar.xz``). An adapter behind a login or a form declares
``access = "where and how to get it"`` instead; :func:`download` then raises
:class:`AccessRequired` carrying that text and the expected layout.

What :func:`download` does for each entry, into the target folder ``to_dir``:

1. **Fetch** over HTTP(S) with :mod:`urllib` into ``to_dir/.unihema-download/<filename>.part``.
   An existing ``.part`` is continued with a ``Range: bytes=<size>-`` request; a server that
   answers ``200`` instead of ``206`` (it ignores ranges) restarts the file from byte 0. A
   connection that drops early (fewer bytes than ``Content-Length``) is retried from where it
   stopped, ``retries`` times; the ``.part`` file survives an interrupted run.
2. **Verify** the sha256 when the entry declares one. A mismatch renames the file to
   ``<filename>.bad`` and raises :class:`DownloadError` stating the expected and the actual
   digest. Without a declared digest the computed one is logged and recorded.
3. **Complete** with an atomic rename of ``.part`` to ``<filename>`` (archives stay in
   ``.unihema-download/``; a plain file, e.g. an ``.npz``, is moved into ``to_dir``).
4. **Extract** archives safely: every member is checked before anything is written. Refused,
   with :class:`UnsafeArchiveError` naming the archive and the member: absolute paths (``/x``,
   ``C:\\x``), ``..`` components, members whose path passes through a link of the archive,
   symbolic or hard links whose target is absolute or leaves the target folder, device files
   and FIFOs. Members are extracted into a temporary folder inside ``to_dir`` and moved into
   place only when the whole archive was extracted; on any error the temporary folder is
   removed and nothing outside ``to_dir`` has been touched.
5. **Mark** completion in ``.unihema-download/<filename>.done`` (JSON: url, sha256, size,
   entries placed). A re-run skips entries whose marker matches the declared url and digest.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import stat
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Union

from unihema.data.catalog import ADAPTERS, DataError, DatasetAdapter
from unihema.utils import sha256_file

logger = logging.getLogger(__name__)

STATE_DIR = ".unihema-download"
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
USER_AGENT = "unihema-download/1"
_CHUNK = 1 << 20


class DownloadError(DataError):
    """A download failed (HTTP error, truncated transfer, checksum mismatch)."""


class UnsafeArchiveError(DataError):
    """An archive member would escape the target folder or is a device file."""


class AccessRequired(DataError):
    """The dataset has no direct URL; the message says where and how to get it."""


@dataclass
class Fetched:
    """The outcome of one ``downloads`` entry."""

    filename: str
    path: Path  #: the downloaded file (an archive stays in the state folder)
    sha256: str
    skipped: bool  #: a completion marker matched: nothing was fetched or extracted
    extracted: List[str]  #: top-level names placed into the target by extraction


# ----------------------------------------------------------------------------- entry point
def _adapter_class(key_or_adapter: Union[str, type, DatasetAdapter]) -> type:
    if isinstance(key_or_adapter, str):
        return ADAPTERS.get(key_or_adapter)
    if isinstance(key_or_adapter, DatasetAdapter):
        return type(key_or_adapter)
    if isinstance(key_or_adapter, type) and issubclass(key_or_adapter, DatasetAdapter):
        return key_or_adapter
    raise TypeError(f"expected an adapter key, class or instance, got {key_or_adapter!r}")


def access_text(cls: type) -> str:
    """The instructions printed for a dataset without direct URLs (access and layout)."""
    how = cls.access or "no download source is declared for this dataset"
    where = f"\nsource: {cls.url}" if cls.url else ""
    return (f"{cls.name}: cannot be downloaded automatically.\n{how}{where}\n\n"
            f"expected layout once obtained (pass this folder as --root):\n{cls.layout()}")


def download(
    key_or_adapter: Union[str, type, DatasetAdapter],
    to_dir: Union[str, Path],
    *,
    progress: bool = True,
    retries: int = 3,
    timeout: float = 60.0,
) -> List[Fetched]:
    """Download and (for archives) safely extract every declared file of a dataset.

    Args:
        key_or_adapter: registry key, adapter class or adapter instance.
        to_dir: target folder (created); becomes the dataset root (see the adapter layout).
        progress: show a progress bar (only on a terminal).
        retries: resumptions after a dropped connection, per file.
        timeout: socket timeout in seconds.

    Returns:
        one :class:`Fetched` per ``downloads`` entry, in order.

    Raises:
        AccessRequired: the adapter declares no ``downloads`` (message: where to get it).
        DownloadError, UnsafeArchiveError: see the module docstring.
    """
    cls = _adapter_class(key_or_adapter)
    entries = tuple(getattr(cls, "downloads", ()) or ())
    if not entries:
        raise AccessRequired(access_text(cls))
    target = Path(to_dir).expanduser()
    target.mkdir(parents=True, exist_ok=True)
    return [fetch_entry(_check_entry(cls.name, i, e), target, progress=progress,
                        retries=retries, timeout=timeout) for i, e in enumerate(entries)]


def _check_entry(name: str, index: int, entry: Mapping[str, object]) -> Dict[str, object]:
    where = f"{name}.downloads[{index}]"
    if not isinstance(entry, Mapping):
        raise DataError(f"{where}: expected a dict with url, sha256, filename, got {entry!r}")
    url, filename, sha = entry.get("url"), entry.get("filename"), entry.get("sha256")
    if not isinstance(url, str) or not url.lower().startswith(("http://", "https://")):
        raise DataError(f"{where}: 'url' must be an http(s) URL, got {url!r}")
    if (not isinstance(filename, str) or not filename or filename in (".", "..")
            or "/" in filename or "\\" in filename):
        raise DataError(f"{where}: 'filename' must be a plain file name, got {filename!r}")
    if sha is not None and (not isinstance(sha, str) or len(sha) != 64
                            or any(c not in "0123456789abcdefABCDEF" for c in sha)):
        raise DataError(f"{where}: 'sha256' must be 64 hex digits or None, got {sha!r}")
    out = dict(entry)
    out["sha256"] = sha.lower() if sha else None
    return out


def is_archive(filename: str) -> bool:
    return filename.lower().endswith(ARCHIVE_SUFFIXES)


def fetch_entry(entry: Mapping[str, object], target: Path, *, progress: bool = True,
                retries: int = 3, timeout: float = 60.0) -> Fetched:
    """Fetch, verify, place and extract one checked ``downloads`` entry into ``target``."""
    url, filename = str(entry["url"]), str(entry["filename"])
    expected: Optional[str] = entry.get("sha256")  # type: ignore[assignment]
    extract = bool(entry.get("extract", is_archive(filename)))
    state = target / STATE_DIR
    state.mkdir(parents=True, exist_ok=True)
    marker = state / f"{filename}.done"
    done = _read_marker(marker)
    placed = state / filename if extract else target / filename
    if (done and done.get("url") == url and (expected is None or done.get("sha256") == expected)
            and (extract or placed.is_file())):
        logger.info("%s: already complete (%s), skipping", filename, marker)
        return Fetched(filename, placed, str(done.get("sha256")), True,
                       list(done.get("extracted", [])))

    final = state / filename
    if done and done.get("url") != url:  # the source moved: never reuse the old bytes
        for stale in (final, state / f"{filename}.part"):
            if stale.is_file():
                stale.unlink()
    if not final.is_file():
        part = state / f"{filename}.part"
        _fetch(url, part, progress=progress, retries=retries, timeout=timeout)
        os.replace(part, final)
    digest = sha256_file(final)
    if expected is not None and digest != expected:
        bad = state / f"{filename}.bad"
        os.replace(final, bad)
        raise DownloadError(
            f"{url}: sha256 mismatch for {filename}: expected {expected}, got {digest}; "
            f"the file was kept as {bad} (delete it and run again, or check the source)")
    if expected is None:
        logger.info("%s: sha256 %s (no checksum declared to verify against)", filename, digest)

    extracted: List[str] = []
    if extract:
        extracted = safe_extract(final, target)
        placed = final
    else:
        placed = target / filename
        os.replace(final, placed)
    _write_marker(marker, {"url": url, "sha256": digest, "size": placed.stat().st_size,
                           "extracted": extracted, "time": time.strftime("%Y-%m-%dT%H:%M:%S")})
    return Fetched(filename, placed, digest, False, extracted)


def _read_marker(path: Path) -> Optional[Dict[str, object]]:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        logger.warning("%s: unreadable completion marker, redoing the download", path)
        return None
    return data if isinstance(data, dict) else None


def _write_marker(path: Path, data: Dict[str, object]) -> None:
    from unihema.utils import atomic_write_text

    atomic_write_text(path, json.dumps(data, indent=2))


# ----------------------------------------------------------------------------- HTTP
class _Interrupted(Exception):
    """The transfer stopped early; the ``.part`` file holds what arrived."""


def _fetch(url: str, part: Path, *, progress: bool, retries: int, timeout: float) -> None:
    """Download ``url`` into ``part``, resuming it and retrying dropped connections."""
    attempt = 0
    while True:
        try:
            _fetch_once(url, part, progress=progress, timeout=timeout)
            return
        except _Interrupted as exc:
            attempt += 1
            if attempt > retries:
                raise DownloadError(
                    f"{url}: transfer interrupted ({exc}) after {retries} resumption(s); "
                    f"{part} keeps {part.stat().st_size if part.exists() else 0} bytes and "
                    f"the next run continues from there") from None
            logger.warning("%s: %s; resuming (attempt %d of %d)", url, exc, attempt, retries)
            time.sleep(min(2.0 ** (attempt - 1), 10.0) * 0.1)


def _fetch_once(url: str, part: Path, *, progress: bool, timeout: float) -> None:
    have = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": USER_AGENT}
    if have:
        headers["Range"] = f"bytes={have}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:
            # the range starts at or past the end: the part is complete or longer than the file
            total = _content_range_total(exc.headers.get("Content-Range", ""))
            exc.close()
            if total == have:
                return
            logger.warning("%s: server refused resuming at byte %d; restarting", url, have)
            part.unlink()
            raise _Interrupted("range not satisfiable, restarted from byte 0") from None
        raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise _Interrupted(f"cannot connect: {reason}") from None

    with response:
        status = response.status
        if status == 206 and have:
            start = _content_range_start(response.headers.get("Content-Range", ""))
            if start != have:
                raise DownloadError(
                    f"{url}: asked to resume at byte {have}, server answered Content-Range "
                    f"'{response.headers.get('Content-Range')}'")
            mode, initial = "ab", have
        elif status == 200:
            if have:
                logger.info("%s: server ignores Range requests; restarting from byte 0", url)
            mode, initial = "wb", 0
        else:
            raise DownloadError(f"{url}: unexpected HTTP status {status}")
        length = response.headers.get("Content-Length")
        remaining = int(length) if length and length.isdigit() else None
        total = initial + remaining if remaining is not None else None
        received = 0
        with open(part, mode) as out, _progress_bar(total, initial, part.name, progress) as bar:
            while True:
                try:
                    chunk = response.read(_CHUNK)
                except (OSError, ValueError) as exc:  # reset, timeout, IncompleteRead
                    raise _Interrupted(f"connection lost after {initial + received} bytes "
                                       f"({type(exc).__name__})") from None
                if not chunk:
                    break
                out.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
        if remaining is not None and received < remaining:
            raise _Interrupted(f"connection closed after {initial + received} of {total} bytes")


def _content_range_start(value: str) -> Optional[int]:
    # "bytes 100-999/1000"
    try:
        return int(value.split()[1].split("-")[0])
    except (IndexError, ValueError):
        return None


def _content_range_total(value: str) -> Optional[int]:
    # "bytes */1000"
    try:
        return int(value.rsplit("/", 1)[1])
    except (IndexError, ValueError):
        return None


def _progress_bar(total: Optional[int], initial: int, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit="B", unit_scale=True,
                unit_divisor=1024, disable=not (enabled and sys.stderr.isatty()))


# ----------------------------------------------------------------------------- extraction
def _member_parts(archive: Path, name: str) -> List[str]:
    """Normalised path components of a member name; refuses absolute names and ``..``."""
    unified = name.replace("\\", "/")
    if unified.startswith("/") or (len(unified) > 1 and unified[1] == ":"):
        raise UnsafeArchiveError(f"{archive}: member '{name}' has an absolute path; refused")
    parts = [p for p in unified.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchiveError(f"{archive}: member '{name}' contains a '..' component; "
                                 f"refused (it would write outside the target folder)")
    return parts


def _check_link(archive: Path, name: str, parts: Sequence[str], link: str, kind: str) -> None:
    """Refuse a link whose target is absolute or leaves the extraction root.

    Symbolic link targets are relative to the link's folder; hard link targets to the root.
    """
    unified = link.replace("\\", "/")
    if not unified or unified.startswith("/") or (len(unified) > 1 and unified[1] == ":"):
        raise UnsafeArchiveError(f"{archive}: {kind} '{name}' points to '{link}', an absolute "
                                 f"path outside the target folder; refused")
    base = list(parts[:-1]) if kind == "symlink" else []
    for p in unified.split("/"):
        if p in ("", "."):
            continue
        if p == "..":
            if not base:
                raise UnsafeArchiveError(f"{archive}: {kind} '{name}' points to '{link}', "
                                         f"outside the target folder; refused")
            base.pop()
        else:
            base.append(p)


def _through_link(archive: Path, name: str, parts: Sequence[str], links: set) -> None:
    for i in range(1, len(parts)):
        if "/".join(parts[:i]) in links:
            raise UnsafeArchiveError(f"{archive}: member '{name}' lies below the link "
                                     f"'{'/'.join(parts[:i])}' of the same archive; refused")


def _zip_type(info: zipfile.ZipInfo) -> int:
    """The Unix file type bits of a zip member (0 when the archive did not record them)."""
    return stat.S_IFMT(info.external_attr >> 16) if info.create_system == 3 else 0


def check_archive(archive: Union[str, Path]) -> int:
    """Check every member of a zip or tar archive; returns the member count.

    Raises:
        UnsafeArchiveError: the first unsafe member (see the module docstring).
        DataError: the file is not a readable zip or tar archive.
    """
    archive = Path(archive)
    links: set = set()
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
            for info in infos:
                parts = _member_parts(archive, info.filename)
                _through_link(archive, info.filename, parts, links)
                kind = _zip_type(info)
                if kind == stat.S_IFLNK:
                    target = zf.read(info).decode("utf-8", "replace")
                    _check_link(archive, info.filename, parts, target, "symlink")
                    links.add("/".join(parts))
                elif kind not in (0, stat.S_IFREG, stat.S_IFDIR):
                    raise UnsafeArchiveError(f"{archive}: member '{info.filename}' is a "
                                             f"device file or FIFO; refused")
            return len(infos)
    try:
        with tarfile.open(archive) as tf:
            members = tf.getmembers()
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise DataError(f"{archive}: not a readable zip or tar archive ({exc})") from None
    for m in members:
        parts = _member_parts(archive, m.name)
        _through_link(archive, m.name, parts, links)
        if m.issym() or m.islnk():
            kind = "symlink" if m.issym() else "hardlink"
            _check_link(archive, m.name, parts, m.linkname, kind)
            links.add("/".join(parts))
        elif not (m.isfile() or m.isdir()):
            raise UnsafeArchiveError(f"{archive}: member '{m.name}' is a device file or FIFO "
                                     f"(tar type {m.type!r}); refused")
    return len(members)


def _extract_zip(archive: Path, dest: Path) -> None:
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            parts = _member_parts(archive, info.filename)
            if not parts:
                continue
            out = dest.joinpath(*parts)
            if info.is_dir():
                out.mkdir(parents=True, exist_ok=True)
            elif _zip_type(info) == stat.S_IFLNK:
                out.parent.mkdir(parents=True, exist_ok=True)
                os.symlink(zf.read(info).decode("utf-8"), out)
            else:
                out.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(out, "wb") as dst:
                    shutil.copyfileobj(src, dst, _CHUNK)


def _extract_tar(archive: Path, dest: Path) -> None:
    with tarfile.open(archive) as tf:
        if hasattr(tarfile, "data_filter"):  # second line of defence (Python >= 3.11.4)
            tf.extractall(dest, filter="data")
        else:  # pragma: no cover - members were checked by check_archive
            tf.extractall(dest)


def _move_into(src: Path, dst: Path) -> None:
    """Move ``src`` to ``dst``: folders merge, a file or link replaces a file or link."""
    if src.is_dir() and not src.is_symlink() and dst.is_dir() and not dst.is_symlink():
        for child in sorted(src.iterdir()):
            _move_into(child, dst / child.name)
        src.rmdir()
        return
    if dst.is_dir() and not dst.is_symlink():
        raise DataError(f"cannot place '{src.name}' at {dst}: a folder of that name exists; "
                        f"move it away and run again")
    if dst.is_symlink() or dst.exists():
        dst.unlink()  # a stale link is replaced, never followed
    os.replace(src, dst)


def safe_extract(archive: Union[str, Path], target: Union[str, Path]) -> List[str]:
    """Extract a zip / tar (gz, bz2, xz) archive into ``target`` after checking every member.

    Extraction happens in a temporary folder inside ``target``; its top-level entries are then
    moved into ``target`` (merging folders, replacing files of the same name). Returns the
    top-level names placed, sorted.
    """
    archive, target = Path(archive), Path(target)
    check_archive(archive)
    target.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".unihema-extract-", dir=target))
    try:
        if zipfile.is_zipfile(archive):
            _extract_zip(archive, tmp)
        else:
            filter_error = getattr(tarfile, "FilterError", ())
            try:
                _extract_tar(archive, tmp)
            except filter_error as exc:
                raise UnsafeArchiveError(f"{archive}: {exc}; refused") from None
        names = sorted(p.name for p in tmp.iterdir())
        for name in names:
            _move_into(tmp / name, target / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return names
