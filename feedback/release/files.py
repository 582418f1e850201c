"""Release folders on a local disk or any pyarrow filesystem (S3, GCS, HDFS), written once.

A release is built under `<dataset>/.building/<version>-<host>-<pid>-<random>/` and then
published to `<dataset>/<version>/`: by a rename on a local disk (atomic), by copying each
object with `manifest.json` last on object stores (a folder without its manifest is an
unfinished copy). A failed build deletes its temporary folder; a published folder is never
written again, and on a local disk it is read-only (`seal`: files 0444, folders 0555). A
build that was killed cannot clean up, so each build first deletes the temporary folders of
its dataset whose process is gone (made on this host) or that nothing has written to for
`STALE_AFTER` (made elsewhere, where the process cannot be asked). A folder in a release's
place that no release record owns is moved, whole, to `<dataset>/.orphaned/<version>-<UTC
time>/` (`set_aside`).
`SHA256SUMS` lists every other file as `<sha256>  <path>`, so `sha256sum -c SHA256SUMS`
checks a downloaded copy; the store keeps the digests of `SHA256SUMS` and `manifest.json`
(`anchor`), which a folder cannot rewrite along with its files.
"""

from __future__ import annotations

import hashlib
import os
import socket
import uuid
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable, Iterable
from urllib.parse import parse_qs, urlsplit

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from ..errors import FeedbackError
from ..processes import alive

SUMS = "SHA256SUMS"
MANIFEST = "manifest.json"
INDEX = "index.parquet"
DIFF = "diff.json"
CARD = "README.md"
DATA_SCHEMA = pa.schema([("id", pa.string()), ("text", pa.string()), ("label", pa.string())])  # of data/*.parquet
_SECRETS = ("access_key", "secret_key", "session_token")
_BUILDING = ".building"
_ORPHANED = ".orphaned"
STALE_AFTER = timedelta(hours=24)


def _fsspec_filesystem(location: str, why: Exception) -> tuple[pafs.FileSystem, str]:
    """A scheme pyarrow does not know, through fsspec (az://, memory://, ...) when it is installed."""
    try:
        import fsspec  # optional: the filesystems beyond pyarrow's own
        fs, root = fsspec.core.url_to_fs(location)
    except ImportError as exc:
        raise FeedbackError(f"cannot open release destination {location!r}: {why}; for other filesystems install "
                            f"fsspec and its package for the scheme ({exc})") from None
    except (ValueError, OSError) as exc:
        raise FeedbackError(f"cannot open release destination {location!r}: {exc}") from None
    return pafs.PyFileSystem(pafs.FSSpecHandler(fs)), root


class Destination:
    """The folder that holds releases, `<root>/<dataset>/<version>/`: a local path or a filesystem URL.

    URLs are pyarrow's, for example `s3://bucket/prefix?region=eu-west-1`, for an S3-compatible
    server `s3://bucket/prefix?endpoint_override=host:9000&scheme=http`, or `gs://bucket/prefix`;
    any other scheme goes through fsspec when it is installed (`az://container/prefix` with adlfs,
    `memory://prefix`). Credentials come from the environment, never from the URL (it is recorded).
    """

    def __init__(self, location: str | Path):
        location = str(location)
        if "://" in location:
            if set(parse_qs(urlsplit(location).query)) & set(_SECRETS):
                raise FeedbackError(f"{location!r} holds credentials; pass them in the environment (for S3: "
                                    "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY), since the location is recorded")
            try:
                self.fs, root = pafs.FileSystem.from_uri(location)
            except (pa.ArrowException, ValueError) as exc:
                self.fs, root = _fsspec_filesystem(location, exc)
        else:
            location = str(Path(location).resolve())
            self.fs, root = pafs.LocalFileSystem(), location
        self.location = location
        self.root = root.rstrip("/")

    def path(self, *parts: str) -> str:
        return "/".join([self.root, *parts])

    def exists(self, path: str) -> bool:
        return self.fs.get_file_info(path).type != pafs.FileType.NotFound

    def read(self, path: str) -> bytes:
        try:
            with self.fs.open_input_stream(path) as f:
                return f.read()
        except FileNotFoundError:
            raise FeedbackError(f"{self.describe(path)} is missing") from None

    def read_parquet(self, path: str, columns: list[str] | None = None, filters=None) -> pa.Table:
        return pq.read_table(path, columns=columns, filters=filters, filesystem=self.fs)

    def files(self, folder: str) -> list[str]:
        """Paths of every file under `folder`, relative to it, sorted."""
        selector = pafs.FileSelector(folder, recursive=True, allow_not_found=True)
        return sorted(info.path[len(folder) + 1:] for info in self.fs.get_file_info(selector)
                      if info.type == pafs.FileType.File)

    @property
    def local(self) -> bool:
        return isinstance(self.fs, pafs.LocalFileSystem)

    def describe(self, path: str) -> str:
        """A path as the user knows it: local, or the URL's scheme and path."""
        if self.local:
            return path
        return f"{urlsplit(self.location).scheme}://{path}"

    @contextmanager
    def building(self, dataset: str, version: str):
        """A temporary folder for a build, deleted when the block ends unless it was published. Stale ones go first."""
        self.sweep(dataset)
        name = f"{version}-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        folder = self.path(dataset, _BUILDING, name)
        self.fs.create_dir(folder)
        try:
            yield folder
        finally:
            if self.exists(folder):
                self.fs.delete_dir(folder)

    def sweep(self, dataset: str) -> None:
        """Delete the temporary folders that builds of `dataset` left behind when they were killed."""
        found = self.fs.get_file_info(pafs.FileSelector(self.path(dataset, _BUILDING), allow_not_found=True))
        for info in found:
            if info.type == pafs.FileType.Directory and self._abandoned(info):
                self.fs.delete_dir(info.path)

    def _abandoned(self, folder: pafs.FileInfo) -> bool:
        _, _, builder = folder.base_name.partition("-")
        host, _, pid = builder.rpartition("-")[0].rpartition("-")
        if host == socket.gethostname() and pid.isdigit():
            return not alive(int(pid))
        written = [info.mtime for info in [folder, *self.fs.get_file_info(pafs.FileSelector(folder.path, recursive=True))]
                   if info.mtime]
        return bool(written) and datetime.now(timezone.utc) - max(written) > STALE_AFTER

    def create(self, path: str, write: Callable[[_Hashing], object]) -> dict:
        """Make a file by `write(file)`; its SHA-256 and size in bytes, taken as it is written."""
        self.fs.create_dir(path.rsplit("/", 1)[0])
        with self.fs.open_output_stream(path) as out:
            file = _Hashing(out)
            write(file)
        return {"sha256": file.sha256.hexdigest(), "bytes": file.size}

    def publish(self, built: str, final: str) -> None:
        """Move a built folder to its final place and seal it; refuse if something is there already."""
        if self.exists(final):
            raise FeedbackError(f"{self.describe(final)} exists already; releases are never overwritten")
        self._move(built, final)
        self.seal(final)

    def seal(self, folder: str) -> None:
        """Make a release folder read-only on a local disk: files 0444, folders 0555 (object stores have no modes)."""
        if not self.local:
            return
        for parent, _, names in os.walk(folder, topdown=False):
            for name in names:
                os.chmod(os.path.join(parent, name), 0o444)
            os.chmod(parent, 0o555)

    def set_aside(self, dataset: str, version: str) -> str:
        """Move the folder at `<dataset>/<version>` out of the way of builds, kept whole and sealed; its new path."""
        folder = self.path(dataset, version)
        aside = self.path(dataset, _ORPHANED, f"{version}-{datetime.now(timezone.utc):%Y%m%dT%H%M%S.%fZ}")
        if self.local:
            os.chmod(folder, 0o755)  # moving a folder to another parent rewrites its '..' entry
        self._move(folder, aside)
        self.seal(aside)
        return aside

    def _move(self, source: str, target: str) -> None:
        """A rename on a local disk; elsewhere a copy of each object, `manifest.json` last, then a delete."""
        if self.local:
            self.fs.create_dir(target.rsplit("/", 1)[0])
            self.fs.move(source, target)
            return
        for name in sorted(self.files(source), key=lambda n: n == MANIFEST):
            self.fs.copy_file(f"{source}/{name}", f"{target}/{name}")
        self.fs.delete_dir(source)


class _Hashing:
    """A file being written: passes the bytes on and keeps their SHA-256 and count."""

    closed = False

    def __init__(self, out):
        self.out, self.sha256, self.size = out, hashlib.sha256(), 0

    def write(self, data) -> int:
        self.sha256.update(data)
        self.size += len(data)
        return self.out.write(data)

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        pass


def sha256(data) -> str:
    return hashlib.sha256(data).hexdigest()


def write_parquet(tables: Iterable[pa.Table], schema: pa.Schema, file, *, row_group_size: int, dictionary: list[str],
                  statistics: list[str]) -> None:
    """One Parquet file (zstd) of the rows of `tables`, in row groups of at most `row_group_size`
    rows that never span two tables; the same rows always give the same bytes.

    Only the `dictionary` columns (few distinct values) are dictionary-encoded, and only the
    `statistics` columns get min/max statistics: on texts and hashes both cost time and
    help no reader.
    """
    with pq.ParquetWriter(file, schema, compression="zstd", use_dictionary=dictionary,
                          write_statistics=statistics) as writer:
        for table in tables:
            writer.write_table(table, row_group_size=row_group_size)


def read_splits(dest: Destination, folder: str, splits: dict, names: list[str]) -> pa.Table:
    """The data files of these splits of a release (`splits` as in its manifest), with a `split` column."""
    parts = [DATA_SCHEMA.empty_table().append_column("split", pa.array([], pa.string()))]
    for name in names:
        for file in splits[name]["files"]:
            data = dest.read_parquet(f"{folder}/{file}").select(DATA_SCHEMA.names).cast(DATA_SCHEMA)
            parts.append(data.append_column("split", pa.array([name] * data.num_rows, pa.string())))
    return pa.concat_tables(parts)


def render_sums(digests: dict[str, str]) -> bytes:
    return "".join(f"{digests[name]}  {name}\n" for name in sorted(digests)).encode()


def _parse_sums(text: str) -> dict[str, str]:
    sums = {}
    for line in text.splitlines():
        digest, sep, name = line.partition("  ")
        if sep:
            sums[name] = digest
    return sums


def anchor(dest: Destination, folder: str) -> dict[str, str | None]:
    """SHA-256 of `manifest.json` and of `SHA256SUMS` (None where missing): together they vouch for every
    file of a release, so the store keeps them to check the folder against later."""
    return {name: sha256(dest.read(f"{folder}/{name}")) if dest.exists(f"{folder}/{name}") else None
            for name in (MANIFEST, SUMS)}


def check_files(dest: Destination, folder: str) -> list[dict]:
    """Problems with the files of a release: missing, changed, or not listed in SHA256SUMS."""
    sums = _parse_sums(dest.read(f"{folder}/{SUMS}").decode())
    present = set(dest.files(folder))
    problems = [{"file": name, "problem": "not listed in SHA256SUMS (added after the build)"}
                for name in sorted(present - set(sums) - {SUMS})]
    for name, digest in sums.items():
        if name not in present:
            problems.append({"file": name, "problem": "missing"})
        elif sha256(dest.read(f"{folder}/{name}")) != digest:
            problems.append({"file": name, "problem": "checksum differs from SHA256SUMS"})
    return sorted(problems, key=lambda p: p["file"])
