"""A trimmed wheelhouse for an air-gapped GPU node: what raysweep needs that the node lacks.

Many HPC and enterprise GPU nodes reach no package index and take only a few tens of MiB
of files per job. Such a node usually has Python with torch, torchvision, timm, numpy,
pandas, scikit-learn, psutil, nvidia-ml-py and pyyaml; raysweep needs Ray, MLflow, Optuna,
albumentations, pydantic and iterative-stratification besides. This script, run on a
machine that reaches PyPI, downloads those at the versions pinned in requirements.lock,
as binary wheels for the node's Python and platform, with every dependency the node does
not already have, and trims the big ones of what Python never imports (Ray's Java jars,
test suites, C headers), repacking each as a valid wheel (its RECORD rewritten with the
remaining files' hashes and sizes). On the node:

    python cluster/wheelhouse.py wheels/                        # here: cp312, manylinux x86_64
    pip install --no-index --find-links wheels/ --target deps/ wheels/*.whl   # there

What the node has is assumed with its whole dependency tree (read from this
environment's installed metadata: scikit-learn brings scipy, timm huggingface-hub and
requests, ...). `--have` changes the list; `--budget-mib` is the size the wheelhouse must
stay under (the script fails above it). The MLflow it brings is the client with the
SQLite store (`mlflow-skinny`, SQLAlchemy, Alembic), not the server and its UI.
"""

from __future__ import annotations

import argparse
import base64
import concurrent.futures
import csv
import hashlib
import io
import lzma
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]

# What raysweep's trials and the GPU check import (ray[default]'s dashboard is not needed:
# raysweep frees a stopped trial's workers itself, raysweep.sweep.placement).
ROOTS = ("ray[tune,train]", "mlflow-skinny", "sqlalchemy", "alembic", "optuna", "albumentations", "pydantic", "iterative-stratification")
NODE_HAS = ("torch", "torchvision", "timm", "numpy", "pandas", "scikit-learn", "psutil", "nvidia-ml-py", "pyyaml")
PLATFORMS = ("manylinux2014_x86_64", "manylinux_2_17_x86_64", "manylinux_2_28_x86_64", "linux_x86_64")


@dataclass(frozen=True)
class Trim:
    """Paths inside a wheel that Python never imports, by package."""

    patterns: tuple[str, ...]
    why: str


TRIMS = {
    "ray": Trim(
        (r"^ray/jars/", r"^ray/rllib/", r"^ray/dashboard/client/", r"^ray/serve/", r"^ray/llm/", r"^ray/data/", r"/tests?/", r"^ray/core/src/ray/gcs/gcs_server_test",
         r"^ray/cpp/", r"^ray/_private/runtime_env/agent/thirdparty_files/", r"\.pyi$"),
        "Java jars, RLlib, Serve, Ray Data, LLM, the dashboard's web client and the C++ API, and tests: raysweep's "
        "trials import ray.tune and ray.train only",
    ),
    "pyarrow": Trim(
        (r"^pyarrow/include/", r"^pyarrow/src/", r"^pyarrow/tests/", r"\.pyx$", r"\.pxd$", r"\.pxi$", r"\.h$", r"\.cc$", r"_pyarrow_cpp_tests\."),
        "headers, Cython sources and tests (its libraries all stay: each module links every one of them)",
    ),
    "opencv-python-headless": Trim((r"^cv2/data/", r"\.pyi$", r"^cv2/typing/"), "Haar cascades and type stubs"),
    "sqlalchemy": Trim((r"\.pyi$", r"/testing/"), "type stubs and SQLAlchemy's test harness"),
    "*": Trim((r"/tests?/", r"\.pyi$"), "test suites and type stubs"),
}


@dataclass
class Wheelhouse:
    out: Path
    pins: dict[str, str]
    have: set[str]
    python_version: str = "3.12"
    platforms: tuple[str, ...] = PLATFORMS
    got: dict[str, Path] = field(default_factory=dict)

    def environment(self, extra: str = "") -> dict[str, str]:
        return {
            "python_version": self.python_version, "python_full_version": f"{self.python_version}.0", "sys_platform": "linux",
            "platform_system": "Linux", "platform_machine": "x86_64", "os_name": "posix", "implementation_name": "cpython",
            "platform_python_implementation": "CPython", "extra": extra,
        }

    def download(self, name: str) -> Path:
        version = self.pins.get(name)
        if version is None:
            raise SystemExit(f"wheelhouse: {name} is not pinned in the lock file")
        dest = self.out / ".download"
        abi = "cp" + self.python_version.replace(".", "")
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:", "--dest", str(dest),
               "--python-version", self.python_version, "--implementation", "cp", "--abi", abi, "--abi", "abi3", "--abi", "none"]
        for platform in self.platforms:
            cmd += ["--platform", platform]
        subprocess.run([*cmd, f"{name}=={version}"], check=True)
        stem = "[-_.]".join(re.escape(part) for part in re.split(r"[-_.]", name))  # wheels spell a name with _ for -
        pattern = re.compile(rf"^{stem}-{re.escape(version)}-", re.IGNORECASE)
        (wheel,) = [p for p in dest.glob("*.whl") if pattern.match(p.name)]
        return wheel

    def requires(self, wheel: Path, extras: set[str]) -> list[Requirement]:
        with zipfile.ZipFile(wheel) as z:
            meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA") and n.count("/") == 1)
            text = z.read(meta).decode()
        out = []
        for line in text.splitlines():
            if not line.startswith("Requires-Dist:"):
                continue
            req = Requirement(line.split(":", 1)[1].strip())
            if req.marker is None or any(req.marker.evaluate(self.environment(e)) for e in extras | {""}):
                out.append(req)
        return out

    def collect(self, roots) -> None:
        todo = [Requirement(r) for r in roots]
        extras_of: dict[str, set[str]] = {}
        while todo:
            req = todo.pop()
            name = canonicalize_name(req.name)
            if name in self.have:
                continue
            new_extras = set(req.extras) - extras_of.get(name, set())
            if name in self.got and not new_extras:
                continue
            extras_of[name] = extras_of.get(name, set()) | set(req.extras)
            if name not in self.got:
                self.got[name] = self.download(name)
            todo.extend(self.requires(self.got[name], extras_of[name]))


def pins_of(lock: Path) -> dict[str, str]:
    pins = {}
    for line in lock.read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9._-]+)(?:\[[^]]*\])?==([^ \\;]+)", line)
        if m:
            pins[canonicalize_name(m.group(1))] = m.group(2)
    return pins


def installed_closure(names) -> set[str]:
    """`names` with everything they depend on, as installed here (what a node with them has)."""
    from importlib import metadata

    seen: set[str] = set()
    todo = [canonicalize_name(n) for n in names]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            reqs = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue  # assumed present, dependencies unknown here
        for line in reqs:
            req = Requirement(line)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(canonicalize_name(req.name))
    return seen


def _record_line(name: str, data: bytes) -> list[str]:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return [name, f"sha256={digest}", str(len(data))]


ELF = b"\x7fELF"


def strip_symbols(data: bytes) -> bytes:
    """An ELF library or program without its symbol tables (`strip --strip-unneeded`, what
    distributions ship; the dynamic symbols that linking needs stay). Ray's and pyarrow's
    binaries come unstripped: a third of their size."""
    if shutil.which("strip") is None:
        return data
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp, "in"), Path(tmp, "out")
        src.write_bytes(data)
        done = subprocess.run(["strip", "--strip-unneeded", "-o", str(out), str(src)], capture_output=True)
        return out.read_bytes() if done.returncode == 0 and out.exists() else data


def trim(wheel: Path, dest: Path, project: str) -> tuple[int, int]:
    """Copy `wheel` to `dest` without the files its trim rules name and with its binaries
    stripped; (files dropped, bytes saved uncompressed)."""
    rules = [re.compile(p) for p in (TRIMS.get(project, TRIMS["*"]).patterns + (TRIMS["*"].patterns if project in TRIMS else ()))]
    dropped, dropped_bytes, changed = 0, 0, False
    with zipfile.ZipFile(wheel) as src:
        record_name = next(n for n in src.namelist() if n.endswith(".dist-info/RECORD") and n.count("/") == 1)  # not a vendored package's
        dist_info = record_name.rsplit("/", 1)[0] + "/"
        kept: list[tuple[zipfile.ZipInfo, bytes]] = []
        for info in src.infolist():
            if info.filename == record_name:
                continue
            if not info.filename.startswith(dist_info) and any(r.search(info.filename) for r in rules):
                dropped += 1
                dropped_bytes += info.file_size
                continue
            data = src.read(info)
            stripped = strip_symbols(data) if data[:4] == ELF else data
            if len(stripped) < len(data):
                dropped_bytes += len(data) - len(stripped)
                changed = True
            kept.append((info, stripped))
    if not (dropped or changed):
        dest.write_bytes(wheel.read_bytes())
        return 0, 0
    rows = [_record_line(info.filename, data) for info, data in kept if not info.is_dir()] + [[record_name, "", ""]]
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as out:
        for info, data in kept:
            info.compress_type = zipfile.ZIP_DEFLATED
            out.writestr(info, data, compresslevel=6)
        out.writestr(record_name, buf.getvalue())
    return dropped, dropped_bytes


def build(out: Path, *, lock: Path, have, roots=ROOTS, python_version: str = "3.12", platforms=PLATFORMS) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    house = Wheelhouse(out, pins_of(lock), installed_closure(have), python_version, tuple(platforms))
    house.collect(roots)
    built = {}
    for project, wheel in sorted(house.got.items()):
        dest = out / wheel.name
        trim(wheel, dest, project)
        built[project] = dest
    return built


def stored_xz(wheel: Path) -> bytes:
    """The wheel rewritten uncompressed (ZIP_STORED, still a valid wheel), compressed with xz:
    a third smaller than the wheel's own deflate for Ray's and OpenCV's binaries."""
    buf = io.BytesIO()
    with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as out:
        for info in src.infolist():
            data = src.read(info)
            info.compress_type = zipfile.ZIP_STORED
            out.writestr(info, data)
    return lzma.compress(buf.getvalue(), preset=9)


def pack(wheels: list[Path], dest: Path, part_mib: float) -> list[Path]:
    """The wheels as `part-N/<wheel>.xz` folders of at most `part_mib` each, for a transfer
    limited per run: part 1 in one run, part 2 in the next (`bench/gpu_offline.sh`)."""
    # xz at preset 9 is minutes of one core for Ray's and OpenCV's wheels; `lzma` releases the GIL
    # while it compresses, so threads use every core (each compressor holds ~700 MiB: at most 4)
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1))) as pool:
        blobs = dict(zip((w.name for w in wheels), pool.map(stored_xz, wheels)))
    budget = part_mib * 2**20
    if max(len(b) for b in blobs.values()) > budget:
        raise SystemExit(f"wheelhouse: one wheel alone is over {part_mib:g} MiB")
    for n in range(max(1, math.ceil(sum(map(len, blobs.values())) / budget)), len(blobs) + 1):
        parts: list[dict[str, bytes]] = [{} for _ in range(n)]
        for name, blob in sorted(blobs.items(), key=lambda kv: -len(kv[1])):  # largest first, to the emptiest part
            min(parts, key=lambda p: sum(map(len, p.values())))[name] = blob
        if all(sum(map(len, p.values())) <= budget for p in parts):
            break
    shutil.rmtree(dest, ignore_errors=True)
    folders = []
    for i, part in enumerate(parts, 1):
        folder = dest / f"part-{i}"
        folder.mkdir(parents=True)
        for name, blob in part.items():
            (folder / f"{name}.xz").write_bytes(blob)
        folders.append(folder)
    return folders


def folder_mib(folder: Path) -> float:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 2**20


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", type=Path, help="folder for the wheels (a .download cache is kept inside it)")
    p.add_argument("--lock", type=Path, default=REPO / "requirements.lock")
    p.add_argument("--have", default=",".join(NODE_HAS), help="what the node already has (default: %(default)s)")
    p.add_argument("--python-version", default="3.12")
    p.add_argument("--platform", action="append", help=f"wheel platform tags (default: {', '.join(PLATFORMS)})")
    p.add_argument("--pack", type=Path, default=None, help="also write the wheels xz-compressed as part-N folders here")
    p.add_argument("--part-mib", type=float, default=46.0, help="the most one part may hold (default %(default)s: a 64 MiB transfer with room)")
    args = p.parse_args(argv)
    built = build(args.out, lock=args.lock, have=args.have.split(","), python_version=args.python_version, platforms=args.platform or PLATFORMS)
    total = 0
    for project, wheel in built.items():
        size = wheel.stat().st_size
        total += size
        print(f"{size / 2**20:8.2f} MiB  {wheel.name}")
    print(f"{total / 2**20:8.2f} MiB  in all ({len(built)} wheels)")
    if args.pack:
        for folder in pack(list(built.values()), args.pack, args.part_mib):
            print(f"{folder_mib(folder):8.2f} MiB  {folder} ({len(list(folder.iterdir()))} wheels, xz)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
