"""A built wheel works on its own: notebooks, templates, migrations and the catalog ship inside it.

The wheel is built from a copy of the package, installed without dependencies
into a fresh virtual environment that sees this venv's third-party packages
through a ``.pth`` path line (so nothing is downloaded, and this checkout's
editable install stays invisible; ``JUPYTER_PATH`` points at their data files,
nbconvert's templates), and run from an empty directory.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600, **kw)
    assert res.returncode == 0, f"{cmd}: {res.stdout[-2000:]}\n{res.stderr[-2000:]}"
    return res


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A venv with only the perfkit wheel installed; its bin/ folder."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    shutil.copytree(REPO / "perfkit", src / "perfkit", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
          "-w", str(tmp / "dist"), str(src)])
    wheel, = (tmp / "dist").glob("perfkit-*.whl")
    env_dir = tmp / "venv"
    venv.create(env_dir, with_pip=False)
    site, = (env_dir / "lib").glob("python3*/site-packages")
    (site / "project_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or "uv"
    _run([uv, "pip", "install", "--no-deps", "--offline", "--python", str(env_dir / "bin" / "python"), str(wheel)])
    return env_dir / "bin"


def test_installed_wheel_renders_a_shipped_notebook_from_an_empty_folder(installed, tmp_path):
    work = tmp_path / "empty"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PERFKIT_", "PYTHON", "JUPYTER"))}
    env["JUPYTER_PATH"] = str(Path(sys.prefix) / "share" / "jupyter")  # nbconvert's templates, as installed
    where = _run([str(installed / "python"), "-c", "import perfkit; print(perfkit.__file__)"], cwd=work, env=env)
    package = Path(where.stdout.strip()).parent
    assert package.is_relative_to(installed.parent) and not package.is_relative_to(REPO)
    _run([str(installed / "python"), "-c", "from perfkit import store; store.connect('tmp.duckdb').close()"],
         cwd=work, env=env)  # the schema migrations ship in the wheel
    res = _run([str(installed / "perfkit"), "report", "06", "-p", "hours", "24", "--db", "tmp.duckdb",
                "--out", "out", "--no-progress"], cwd=work, env=env)
    assert "06_tco.html  ok" in res.stdout
    assert (work / "out" / "06_tco.html").stat().st_size > 10_000 and (work / "out" / "index.html").exists()
    record = nbformat.read(str(work / "out" / "06_tco.ipynb"), as_version=4).metadata["perfkit_report"]
    assert Path(record["notebook"]) == package / "notebooks" / "06_tco.ipynb"
    assert record["parameters"]["hours"] == 24.0
    assert sorted(p.name for p in work.iterdir()) == ["out", "tmp.duckdb"]
