"""Where entries and blobs live: a folder (`.uet/cache/`, a shared mount) or any fsspec URL
(`s3://bucket/prefix`, `gs://...`, `http(s)://...`).

Layout: `blobs/ab/<sha256>` (file contents, named by their hash) and
`entries/ab/<key>.json` (one manifest per key). Writes are whole or absent: in a folder, a
temporary name then a rename; on an object store, one PUT per object (an object appears
whole or not at all). Blobs go first and the entry last, so an entry never names a blob
that is not there; every read checks the hash it is named by. No fsync: a file a power cut
tore fails that check and is a miss, so durability would buy nothing but milliseconds.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from uet_doit.cache.blobs import CHUNK, copy_hashed, temp_beside, text_digest
from uet_doit.cache.entries import DamagedEntry, Entry, is_digest
from uet_doit.cache.store_files import (
    MAX_ENTRY_BYTES,
    NotAStoreFile,
    in_layout,
    is_regular,
    open_regular,
    read_bounded,
)
from uet_doit.errors import CacheStoreError

LOCAL_STORE = ".uet/cache"
PROFILE_FILE = "PROJECT_PROFILE.yaml"
STORE_ENV = "UET_CACHE_STORE"
#: an object store that does not answer is given up on quickly: the step then just runs
S3_OPTIONS: dict[str, Any] = {
    "config_kwargs": {"connect_timeout": 5, "read_timeout": 60, "retries": {"max_attempts": 2}}
}
#: temporary files older than this are left by a killed writer (`uet cache prune` drops them)
STALE_TEMP_SECONDS = 3600.0


def configured_store(root: Path, flag: str | None, environ: dict[str, str]) -> str | None:
    """The shared store's URL: `--cache-store`, else UET_CACHE_STORE, else `cache_store` in
    PROJECT_PROFILE.yaml; None when none is set."""
    if flag:
        return flag
    if environ.get(STORE_ENV):
        return environ[STORE_ENV]
    profile = root / PROFILE_FILE
    if not profile.is_file():
        return None
    import yaml

    try:
        data = yaml.safe_load(profile.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        msg = f"{profile} cannot be read for its cache_store ({exc})"
        raise CacheStoreError(msg, "fix the file, or name the store with --cache-store") from None
    value = data.get("cache_store") if isinstance(data, dict) else None
    return str(value) if value else None


def _is_local(url: str) -> bool:
    return "://" not in url or url.startswith("file://")


@dataclass(frozen=True)
class StoredEntry:
    key: str
    path: str
    modified: float
    size: int


class CacheStore:
    """One store, by URL or folder. Every failure to reach it is a CacheStoreError; a blob
    or entry that fails its hash is DamagedEntry."""

    def __init__(self, url: str, root: Path | None = None) -> None:
        self.url = url
        self.local = _is_local(url)
        if self.local:
            folder = Path(url.removeprefix("file://"))
            if not folder.is_absolute() and root is not None:
                folder = root / folder
            self.base = str(folder)
            self._fs: Any = None
        else:
            self.base = url.rstrip("/")
            self._fs = None

    @classmethod
    def for_run(cls, root: Path, url: str | None) -> CacheStore:
        return cls(url or str(root / LOCAL_STORE), root)

    @property
    def fs(self) -> Any:
        if self._fs is None:
            try:
                import fsspec

                options = S3_OPTIONS if self.base.startswith(("s3://", "s3a://")) else {}
                self._fs, self.base = fsspec.core.url_to_fs(self.url.rstrip("/"), **options)
            except (ImportError, ValueError) as exc:
                msg = f"cache store {self.url}: {exc}"
                hint = "for s3:// install s3fs, for gs:// gcsfs (pip install 'uet-doit[s3]')"
                raise CacheStoreError(msg, hint) from None
        return self._fs

    def __str__(self) -> str:
        return self.url

    # -- paths -------------------------------------------------------------------------------
    def blob_path(self, digest: str) -> str:
        return f"{self.base}/blobs/{digest[:2]}/{_named(digest)}"

    def entry_path(self, key: str) -> str:
        return f"{self.base}/entries/{key[:2]}/{_named(key)}.json"

    def _fail(self, action: str, exc: BaseException) -> CacheStoreError:
        return CacheStoreError(
            f"cache store {self.url} could not {action}: {type(exc).__name__}: {exc}",
            "check the URL and your access to it; steps run without the cache meanwhile",
        )

    # -- reading ----------------------------------------------------------------------------
    def read(self, path: str, limit: int = MAX_ENTRY_BYTES) -> bytes | None:
        """A small file of the store (an entry, a step's latest key), None when absent;
        DamagedEntry when it is not a regular file or is larger than `limit`."""
        try:
            with self._open(path) as handle:
                return read_bounded(handle, limit, path.rsplit("/", 1)[-1][:16] + "…")
        except FileNotFoundError:
            return None
        except (CacheStoreError, DamagedEntry):
            raise
        except Exception as exc:  # fsspec backends raise their own kinds
            raise self._fail(f"read {path}", exc) from None

    def get_entry(self, key: str) -> Entry | None:
        data = self.read(self.entry_path(key))
        return None if data is None else Entry.from_bytes(data, key)

    def _open(self, path: str) -> BinaryIO:
        if self.local:
            if not in_layout(self.base, path, local=True):  # e.g. blobs/ab a symlink out
                raise NotAStoreFile(path, "outside the store's own folders")
            return open_regular(path)
        handle: BinaryIO = self.fs.open(path, "rb")
        return handle

    def fetch_blob(self, digest: str, target: Path, size: int) -> None:
        """The blob's content into `target`, in chunks, hashed on the way and never more
        than the `size` the entry records; renamed into place only once it matches. An
        OSError is the target's (a full disk, a folder in the way)."""
        src = self._open_blob(digest)
        temp = temp_beside(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            with src, temp.open("wb") as dst:
                try:
                    found, length = copy_hashed(src, dst, size)
                except OSError:
                    raise
                except Exception as exc:  # fsspec backends raise their own kinds
                    raise self._fail(f"read blob {digest[:12]}", exc) from None
            if found != digest or length != size:
                with contextlib.suppress(CacheStoreError):
                    self.remove(self.blob_path(digest))  # so the next store writes it anew
                msg = f"blob {digest[:12]} does not match its hash (damaged; removed)"
                raise DamagedEntry(msg)
            os.replace(temp, target)
        finally:
            temp.unlink(missing_ok=True)

    def _open_blob(self, digest: str) -> BinaryIO:
        try:
            return self._open(self.blob_path(digest))
        except FileNotFoundError:
            msg = f"blob {digest[:12]} named by the entry is missing from the store"
            raise DamagedEntry(msg) from None
        except DamagedEntry:
            raise
        except Exception as exc:
            raise self._fail(f"read blob {digest[:12]}", exc) from None

    def blob_problem(self, digest: str, size: int) -> str | None:
        """What is wrong with a stored blob (missing, damaged), read in chunks; None if whole."""
        try:
            with self._open_blob(digest) as src:
                found, length = copy_hashed(src, None, size)
        except NotAStoreFile as exc:
            return exc.what
        except DamagedEntry:
            return "is missing"
        except CacheStoreError:
            raise
        except Exception as exc:
            raise self._fail(f"read blob {digest[:12]}", exc) from None
        return None if found == digest and length == size else "does not match its hash"

    def has(self, path: str) -> bool:
        try:
            if self.local:
                return is_regular(path)  # a FIFO or symlink there is replaced, not trusted
            return bool(self.fs.exists(path))
        except Exception as exc:
            raise self._fail(f"look up {path}", exc) from None

    # -- writing ----------------------------------------------------------------------------
    def put_blob(self, source: Path, digest: str) -> bool:
        """Store a file's content under its hash; False when it was there already."""
        path = self.blob_path(digest)
        if self.has(path):
            return False
        if self.local:
            _atomic_copy(source, Path(path), digest)
        else:
            try:
                self.fs.put_file(str(source), path)
            except Exception as exc:
                raise self._fail(f"write blob {digest[:12]}", exc) from None
        return True

    def put_entry(self, entry: Entry) -> None:
        path = self.entry_path(entry.key)
        data = entry.to_bytes()
        if self.local:
            _atomic_write(Path(path), data)
            return
        try:
            self.fs.pipe_file(path, data)
        except Exception as exc:
            raise self._fail(f"write entry {entry.key[:12]}", exc) from None

    # -- the newest key per step: what `uet why` compares with in a fresh clone ---------------
    def step_path(self, bundle_id: str, step_id: str) -> str:
        return f"{self.base}/steps/{bundle_id}/{step_id}.json"

    def put_latest(self, bundle_id: str, step_id: str, key: str, parts: dict[str, str]) -> None:
        body = {"key": key, "parts": parts, "written": time.time()}
        data = json.dumps({"latest": body, "sha256": text_digest(body)}, sort_keys=True).encode()
        path = self.step_path(bundle_id, step_id)
        if self.local:
            _atomic_write(Path(path), data)
            return
        try:
            self.fs.pipe_file(path, data)
        except Exception as exc:
            raise self._fail(f"write {path}", exc) from None

    def get_latest(self, bundle_id: str, step_id: str) -> dict[str, Any] | None:
        """The key and parts the step last stored here, from any clone; None when none did
        (or the record fails its hash)."""
        try:
            data = self.read(self.step_path(bundle_id, step_id))
            if data is None:
                return None
            envelope = json.loads(data)
            body = envelope["latest"]
            if text_digest(body) != envelope["sha256"]:
                return None
        except (DamagedEntry, ValueError, KeyError, TypeError, RecursionError):
            return None
        return body if isinstance(body, dict) else None

    # -- maintenance ------------------------------------------------------------------------
    def _listing(self, prefix: str) -> Iterator[tuple[str, float, int]]:
        """(path, modified, size) of every file under `prefix` (a folder of the store)."""
        top = f"{self.base}/{prefix}"
        if self.local:
            for base, _dirs, files in os.walk(top):
                for name in files:
                    path = os.path.join(base, name)
                    try:
                        st = os.stat(path)
                    except OSError:
                        continue
                    yield path, st.st_mtime, st.st_size
            return
        try:
            found = self.fs.find(top, detail=True)
        except FileNotFoundError:
            return
        except Exception as exc:
            raise self._fail(f"list {top}", exc) from None
        for path, info in found.items():
            yield path, _modified(info), int(info.get("size") or 0)

    def entries(self) -> Iterator[StoredEntry]:
        """Every entry at its layout path (any other file is not uet's and left alone)."""
        for path, modified, size in self._listing("entries"):
            folder, _, name = path.rpartition("/")
            key = name.removesuffix(".json")
            if name.endswith(".json") and is_digest(key) and folder.endswith("/" + key[:2]):
                yield StoredEntry(key, path, modified, size)

    def blobs(self) -> Iterator[tuple[str, str, float, int]]:
        """(digest, path, modified, size) of every blob at its layout path."""
        for path, modified, size in self._listing("blobs"):
            folder, _, name = path.rpartition("/")
            if is_digest(name) and folder.endswith("/" + name[:2]):
                yield name, path, modified, size

    def temporaries(self) -> Iterator[tuple[str, float]]:
        """Temporary files a killed writer left (folder stores only)."""
        if not self.local:
            return
        for prefix in ("blobs", "entries"):
            for path, modified, _size in self._listing(prefix):
                if "uet-tmp" in path.rsplit("/", 1)[-1]:
                    yield path, modified

    def remove(self, path: str) -> None:
        """Delete one of the store's own files; any other path is left alone."""
        if not in_layout(self.base, path, self.local):
            return
        try:
            if self.local:
                Path(path).unlink(missing_ok=True)
            else:
                self.fs.rm_file(path)
        except FileNotFoundError:
            return
        except Exception as exc:
            raise self._fail(f"remove {path}", exc) from None


def _named(digest: str) -> str:
    """A blob name or key, checked to be a sha256 so no path it makes leads out of the store."""
    if not is_digest(digest):
        msg = f"{digest[:40]!r} is not a sha256 (a foreign or poisoned entry)"
        raise DamagedEntry(msg)
    return digest


def _modified(info: dict[str, Any]) -> float:
    for name in ("LastModified", "mtime", "updated", "created"):
        value = info.get(name)
        if value is None:
            continue
        if hasattr(value, "timestamp"):
            return float(value.timestamp())
        try:
            return float(value)
        except (TypeError, ValueError):
            continue
    return time.time()


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.uet-tmp-{uuid.uuid4().hex}")
    try:
        temp.write_bytes(data)
        os.replace(temp, path)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        msg = f"cache store {path.parent}: cannot write ({exc})"
        raise CacheStoreError(msg, "make the folder writable; steps run meanwhile") from None


def _atomic_copy(source: Path, path: Path, digest: str) -> None:
    """Copy, checking on the way that the content still has the hash it is stored under."""
    import hashlib

    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.uet-tmp-{uuid.uuid4().hex}")
    sha = hashlib.sha256()
    try:
        with source.open("rb") as src, temp.open("wb") as dst:
            while chunk := src.read(CHUNK):
                sha.update(chunk)
                dst.write(chunk)
        if sha.hexdigest() != digest:
            temp.unlink(missing_ok=True)
            msg = f"{source} changed while it was being stored"
            raise CacheStoreError(msg, "nothing was stored for it; the next run stores it")
        os.replace(temp, path)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        msg = f"cache store {path.parent}: cannot write ({exc})"
        raise CacheStoreError(msg, "make the folder writable; steps run meanwhile") from None
