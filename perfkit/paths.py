"""Where perfkit finds and puts things: the one home for project, data, cache and notebook paths.

Two layouts are supported. In a source checkout (``pyproject.toml`` beside the
package) the project folder is the checkout; in an installed wheel it is the
current directory. Shipped files (notebooks, the hardware catalog, SQL
migrations) always come from the package itself, so a wheel works on its own.
"""
from __future__ import annotations

import os
from pathlib import Path

#: The installed ``perfkit`` package folder (notebooks, catalog and migrations live inside).
PACKAGE_DIR = Path(__file__).resolve().parent
#: Notebooks shipped with perfkit (a source checkout links ``notebooks/`` here).
PACKAGED_NOTEBOOKS = PACKAGE_DIR / "notebooks"
#: The hardware catalog shipped with perfkit (a source checkout links ``data/hardware.csv`` here).
PACKAGED_CATALOG = PACKAGE_DIR / "data" / "hardware.csv"

ENV_DB = "PERFKIT_DB"
#: ``--db parquet:URL`` reads a Parquet export at any URL (a local folder is recognized without it).
PARQUET_PREFIX = "parquet:"
ENV_CACHE = "PERFKIT_CACHE_DIR"
ENV_CATALOG = "PERFKIT_HARDWARE_CSV"

#: Relative to the current directory, like every path a user types.
DEFAULT_DB = Path("data/perfkit.duckdb")
DEFAULT_REPORTS = Path("reports")


def checkout_dir() -> Path | None:
    """The source checkout perfkit runs from, or None for an installed wheel."""
    root = PACKAGE_DIR.parent
    return root if (root / "pyproject.toml").is_file() else None


def project_dir() -> Path:
    """The checkout when running from one, else the current directory."""
    return checkout_dir() or Path.cwd()


def db_path(db: str | os.PathLike[str] | None = None) -> Path:
    """``--db`` wins, then ``$PERFKIT_DB``, then ``data/perfkit.duckdb`` under the cwd
    (a folder there is a Parquet export: :func:`parquet_location`)."""
    if db:
        return Path(db)
    env = os.environ.get(ENV_DB)
    return Path(env) if env else DEFAULT_DB


def parquet_location(db: str | os.PathLike[str] | None = None) -> str | None:
    """The Parquet export that ``--db`` (else ``$PERFKIT_DB``) names: the URL after ``parquet:``
    (a folder, ``s3://...``, any fsspec URL) or a local folder; None for a DuckDB file."""
    raw = str(db) if db else os.environ.get(ENV_DB, "")
    if raw.startswith(PARQUET_PREFIX):
        return raw[len(PARQUET_PREFIX):]
    return raw if raw and Path(raw).is_dir() else None


def cache_dir() -> Path:
    """Built models and other derived files: ``$PERFKIT_CACHE_DIR``, else ``<checkout>/data/cache``,
    else ``~/.cache/perfkit``; created on first use."""
    env = os.environ.get(ENV_CACHE)
    if env:
        path = Path(env)
    else:
        checkout = checkout_dir()
        path = checkout / "data" / "cache" if checkout else Path.home() / ".cache" / "perfkit"
    path.mkdir(parents=True, exist_ok=True)
    return path


def catalog_path() -> Path:
    """``$PERFKIT_HARDWARE_CSV``, else the nearest ``data/hardware.csv`` at or above the cwd,
    else the catalog shipped in the package."""
    env = os.environ.get(ENV_CATALOG)
    if env:
        return Path(env)
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        candidate = folder / "data" / "hardware.csv"
        if candidate.is_file():
            return candidate
    return PACKAGED_CATALOG


def notebook_dirs() -> list[Path]:
    """Where notebooks are looked up, in order: ``./notebooks``, then the shipped ones."""
    out: list[Path] = []
    for d in (Path.cwd() / "notebooks", PACKAGED_NOTEBOOKS):
        if d.is_dir() and d.resolve() not in [o.resolve() for o in out]:
            out.append(d)
    return out


def display_path(path: Path) -> str:
    """``path`` relative to the project folder when it lies inside it (for reports and logs)."""
    try:
        return str(path.resolve().relative_to(project_dir().resolve()))
    except ValueError:
        return str(path)
