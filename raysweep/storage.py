"""Where results live: a local path or a pyarrow file-system URI (`s3://`, `gs://`), and
writes that a reader never sees half done. Imports neither Ray nor torch (pyarrow only
when a file is touched), so the driver, the trainers and `raysweep report` share it.

    fs, path = filesystem(join(storage_uri("results"), "sweep", "a.json"))
    write_bytes(uri, data)            # to a temporary name, then moved into place
"""

from __future__ import annotations

import os
import posixpath
import shutil
from pathlib import Path


def storage_uri(storage: str) -> str:
    """An absolute path or a URI (Ray Tune and Train need one or the other)."""
    return storage if "://" in storage else str(Path(storage).expanduser().resolve())


def is_remote(uri: str) -> bool:
    return "://" in uri


def filesystem(uri: str):
    """(pyarrow file system, path) of a local path or URI."""
    import pyarrow.fs

    if is_remote(uri):
        return pyarrow.fs.FileSystem.from_uri(uri)
    return pyarrow.fs.LocalFileSystem(), uri


def join(uri: str, *parts: str) -> str:
    return posixpath.join(uri, *parts) if is_remote(uri) else str(Path(uri, *parts))


def exists(uri: str) -> bool:
    import pyarrow.fs

    fs, path = filesystem(uri)
    return fs.get_file_info(path).type != pyarrow.fs.FileType.NotFound


def is_file(fs, path: str) -> bool:
    import pyarrow.fs

    return fs.get_file_info(path).type == pyarrow.fs.FileType.File


def read_bytes(uri: str) -> bytes:
    fs, path = filesystem(uri)
    with fs.open_input_stream(path) as f:
        return f.read()


def write_bytes(uri: str, data: bytes) -> None:
    """Write `data` to a temporary name beside `uri` and move it into place, so a reader
    (or a process killed mid-write) never leaves half a file under the real name."""
    fs, path = filesystem(uri)
    fs.create_dir(posixpath.dirname(path) if is_remote(uri) else str(Path(path).parent), recursive=True)
    tmp = path + ".tmp"
    with fs.open_output_stream(tmp) as out:
        out.write(data)
    fs.move(tmp, path)


def write_local_file(final: Path, write, *, sync: bool = False) -> Path:
    """Call `write(fh)` on a temporary file beside `final` (binary), then rename it into place;
    `sync` flushes it to the disk first (a checkpoint that must survive a power cut)."""
    final = Path(final)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            write(fh)
            if sync:
                fh.flush()
                os.fsync(fh.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)  # an error, not a kill: leave nothing behind
        raise
    os.replace(tmp, final)
    return final


def copy_dir_into_place(local: Path, dest_uri: str, *, move: bool = False) -> None:
    """Copy the local directory `local` to `dest_uri`, replacing what is there. On a local disk
    the copy is made under a temporary name and renamed into place: a process killed mid-copy
    leaves no half directory. Object stores have no directory rename; there the copy is
    direct (readers check a directory's files before trusting it). `move`: `local` is the
    caller's to give away, and on the same file system it is renamed, not copied."""
    fs, dest = filesystem(dest_uri)
    if is_remote(dest_uri):
        import pyarrow.fs

        fs.delete_dir_contents(dest, missing_dir_ok=True)
        pyarrow.fs.copy_files(str(local), dest, destination_filesystem=fs)
        return
    parent, name = os.path.split(dest)
    os.makedirs(parent, exist_ok=True)
    partial = os.path.join(parent, f".{name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        if not move:
            raise OSError("copy")
        os.rename(local, partial)
    except OSError:  # asked to copy, or another file system
        shutil.copytree(local, partial)
    shutil.rmtree(dest, ignore_errors=True)
    os.replace(partial, dest)
