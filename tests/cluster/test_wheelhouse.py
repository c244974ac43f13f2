"""The air-gapped wheelhouse (cluster/wheelhouse.py): trimmed wheels stay valid wheels, and the
real one, built from PyPI for the GPU node (cp312, manylinux x86_64), fits the transfer limit
and installs into an empty folder without an index.

The real build (slow tier) downloads ~140 MB from PyPI. Its install test asks pip for the
node's interpreter (`--python-version 3.12 --only-binary=:all: --no-deps`, the semantics of
`pip install --target` for another Python) rather than building a cp311 twin of the
wheelhouse: it is the cp312 wheels that travel, so it is they that must install; importing
them needs a 3.12 interpreter, which the GPU check itself is (bench/gpu_offline.sh)."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import lzma
import random
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO

sys.path.insert(0, str(REPO / "cluster"))
import wheelhouse  # noqa: E402

TRANSFER_MIB = 64  # the most one GPU run takes along


def record_matches(wheel: Path) -> None:
    """Every file of the wheel is in its RECORD with its sha256 and size, and nothing else is."""
    with zipfile.ZipFile(wheel) as z:
        record_name = next(n for n in z.namelist() if n.endswith(".dist-info/RECORD") and n.count("/") == 1)  # not a vendored package's
        rows = {row[0]: row[1:] for row in csv.reader(io.StringIO(z.read(record_name).decode())) if row}
        files = [n for n in z.namelist() if not n.endswith("/")]
        assert set(rows) == set(files), set(rows) ^ set(files)
        for name in files:
            if name == record_name:
                continue
            data = z.read(name)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            assert rows[name] == [f"sha256={digest}", str(len(data))], name


def toy_wheel(folder: Path, name: str = "ray") -> Path:
    """A wheel `name` with a Java jar, a test suite and a module, and a RECORD of them."""
    info = f"{name}-9.9.9.dist-info"
    files = {f"{name}/__init__.py": b"VALUE = 42\n", f"{name}/jars/ray_dist.jar": b"PK" + bytes(5000), f"{name}/tests/test_x.py": b"assert True\n",
             f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: 9.9.9\n".encode(),
             f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    rows = [wheelhouse._record_line(n, d) for n, d in files.items()] + [[f"{info}/RECORD", "", ""]]
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    path = folder / f"{name}-9.9.9-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for file, data in files.items():
            z.writestr(file, data)
        z.writestr(f"{info}/RECORD", buf.getvalue())
    return path


def test_a_trimmed_wheel_loses_what_python_never_imports_and_stays_an_installable_wheel(tmp_path):
    src = toy_wheel(tmp_path)
    (tmp_path / "out").mkdir()
    dest = tmp_path / "out" / src.name
    dropped, _ = wheelhouse.trim(src, dest, "ray")
    assert dropped == 2
    names = zipfile.ZipFile(dest).namelist()
    assert "ray/__init__.py" in names and not [n for n in names if "/jars/" in n or "/tests/" in n]
    record_matches(dest)
    target = tmp_path / "target"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps", "--target", str(target), str(dest)], check=True)
    assert (target / "ray" / "__init__.py").read_text() == "VALUE = 42\n" and not (target / "ray" / "jars").exists()


def test_packed_parts_hold_every_wheel_once_each_under_its_limit_and_decompress_to_the_same_wheel(tmp_path):
    wheels = []
    for i in range(3):
        w = tmp_path / f"pkg{i}-1.0-py3-none-any.whl"
        with zipfile.ZipFile(w, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr(f"pkg{i}/data.bin", random.Random(i).randbytes(8000))  # incompressible: ~8 KiB of xz each
        wheels.append(w)
    parts = wheelhouse.pack(wheels, tmp_path / "packed", part_mib=0.02)  # ~20 KiB: two wheels to a part
    packed = sorted(p.name for part in parts for p in part.iterdir())
    assert packed == sorted(f"{w.name}.xz" for w in wheels) and len(parts) >= 2
    assert all(wheelhouse.folder_mib(p) <= 0.02 for p in parts)
    for part in parts:
        for blob in part.iterdir():
            restored = zipfile.ZipFile(io.BytesIO(lzma.decompress(blob.read_bytes())))
            original = zipfile.ZipFile(tmp_path / blob.name[: -len(".xz")])
            assert {n: restored.read(n) for n in restored.namelist()} == {n: original.read(n) for n in original.namelist()}


def test_the_lock_pins_are_read_with_extras_and_markers():
    pins = wheelhouse.pins_of(REPO / "requirements.lock")
    assert pins["ray"] == "2.60.0" and pins["mlflow-skinny"] and pins["opencv-python-headless"] and pins["iterative-stratification"]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheelhouse")
    wheels = wheelhouse.build(out / "wheels", lock=REPO / "requirements.lock", have=wheelhouse.NODE_HAS)
    parts = wheelhouse.pack(list(wheels.values()), out / "packed", part_mib=46)
    return wheels, parts, out


@pytest.mark.slow
@pytest.mark.timeout(2400)  # the build: ~170 MB from PyPI, stripped, xz-compressed on 2 cores (10-15 min)
def test_the_gpu_node_wheelhouse_fits_the_transfer_limit_in_parts_and_lacks_nothing_it_names(built):
    wheels, parts, _ = built
    for root in ("ray", "mlflow-skinny", "sqlalchemy", "optuna", "albumentations", "pydantic", "iterative-stratification", "pyarrow", "opencv-python-headless"):
        assert root in wheels, root
    for node_has in ("torch", "numpy", "pandas", "scikit-learn", "scipy", "pyyaml", "psutil"):
        assert node_has not in wheels, node_has
    assert all("cp312" in w.name or "abi3" in w.name or "none-any" in w.name for w in wheels.values())
    sizes = [wheelhouse.folder_mib(p) for p in parts]
    assert len(parts) == 2 and all(s <= 46 < TRANSFER_MIB for s in sizes), sizes  # each part one run, with room
    assert sum(len(list(p.iterdir())) for p in parts) == len(wheels)
    ray = zipfile.ZipFile(wheels["ray"]).namelist()
    assert "ray/_raylet.so" in ray and not [n for n in ray if n.startswith(("ray/jars/", "ray/rllib/"))]
    for project in ("ray", "pyarrow", "sqlalchemy"):
        record_matches(wheels[project])


@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_the_gpu_node_wheelhouse_installs_into_an_empty_target_without_an_index(built, tmp_path):
    _, parts, _ = built
    found = tmp_path / "found"  # what gpu_offline.sh does first: the parts back to wheels
    found.mkdir()
    for part in parts:
        for blob in part.iterdir():
            (found / blob.name[: -len(".xz")]).write_bytes(lzma.decompress(blob.read_bytes()))
    target = tmp_path / "target"
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--find-links", str(found), "--target", str(target),
           "--python-version", "3.12", "--implementation", "cp", "--abi", "cp312", "--abi", "abi3", "--abi", "none", "--only-binary=:all:", "--no-deps"]
    for platform in wheelhouse.PLATFORMS:
        cmd += ["--platform", platform]
    subprocess.run([*cmd, *map(str, sorted(found.glob("*.whl")))], check=True)
    for path in ("ray/_raylet.so", "ray/core/src/ray/raylet/raylet", "ray/tune/__init__.py", "ray/train/torch/__init__.py", "mlflow/system_metrics",
                 "mlflow/store/tracking/sqlalchemy_store.py", "optuna", "albumentations", "cv2", "pyarrow/_fs.cpython-312-x86_64-linux-gnu.so",
                 "pydantic_core", "iterstrat"):
        assert (target / path).exists(), path
    assert not (target / "ray" / "jars").exists()


def test_gpu_offline_installs_the_parts_that_came_without_an_index_then_runs_the_check(tmp_path):
    """bench/gpu_offline.sh with a toy wheelhouse in two parts, one per call, as on the GPU node;
    here gpu.py finds no CUDA and the script passes on its exit status 77 and its one line."""
    import os

    wheels = [toy_wheel(tmp_path, "toyone"), toy_wheel(tmp_path, "toytwo")]
    largest = max(len(wheelhouse.stored_xz(w)) for w in wheels) / 2**20
    parts = wheelhouse.pack(wheels, tmp_path / "house", part_mib=largest * 1.01)  # room for one wheel a part
    assert len(parts) == 2
    deps = tmp_path / "deps"
    env = {**os.environ, "PYTHON": sys.executable, "WHEELHOUSE": str(tmp_path / "arrived"), "GPU_DEPS": str(deps)}
    script = [str(REPO / "bench" / "gpu_offline.sh")]

    (tmp_path / "arrived").mkdir()
    parts[0].rename(tmp_path / "arrived" / parts[0].name)  # the first call brings part 1
    first = subprocess.run(["bash", *script, "--install-only"], env=env, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "installed 1 new wheel(s)" in first.stdout
    shutil.rmtree(tmp_path / "arrived" / parts[0].name)
    parts[1].rename(tmp_path / "arrived" / parts[1].name)  # the second call brings part 2 and runs the check
    results = tmp_path / "results"
    second = subprocess.run(["bash", *script, str(results)], env=env, capture_output=True, text=True, timeout=300)
    assert "installed 1 new wheel(s)" in second.stdout
    assert {p.name for p in (deps / "site").iterdir()} >= {"toyone", "toytwo"}
    assert second.returncode == 77, second.stdout + second.stderr  # no CUDA here
    (line,) = (results / "gpu.txt").read_text().strip().splitlines()
    assert "skipped: no CUDA GPU visible" in line
