"""Zip packages (.docx, .pptx) checked before their library parses them, so a zip bomb is refused.

The central directory is read first: too many members, a declared total over `TOTAL_FACTOR` times the
file-size limit, or a member compressed more than `MAX_RATIO` to 1 is refused. Declared sizes alone do
not bound memory: `ZipFile.read` inflates up to 1 GiB in one step and only then cuts the result to the
declared size, so each member is also inflated here in small steps and refused if it outgrows its
declared size.
"""

from __future__ import annotations

import copy
import zipfile
import zlib
from pathlib import Path

from assistant.loaders.base import corrupt
from assistant.types import LoadError

MAX_MEMBERS = 5000
TOTAL_FACTOR = 10  # the members may declare at most this many times the file-size limit, uncompressed
MAX_RATIO = 200  # uncompressed to compressed, for members over RATIO_FLOOR_BYTES
RATIO_FLOOR_BYTES = 1024 * 1024
_STEP_BYTES = 64 * 1024
_MB = 1024 * 1024
_NAME_CHARS = 80


def check_archive(path: Path, max_file_bytes: int, kind: str, kind_ja: str) -> None:
    """Raise LoadError unless the package at `path` inflates to a bounded size; `kind` names it in messages.

    `kind`/`kind_ja` are as for `corrupt` ("Word file", "Word"). Memory stays at a few steps of 64 KiB.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            _check_directory(members, max_file_bytes, kind, kind_ja)
            for member in members:
                if not _inflates_within(archive, member):
                    name = member.filename[:_NAME_CHARS]
                    raise LoadError(
                        f"refused: part '{name}' of the {kind} inflates beyond the size its archive declares"
                        " (a zip bomb?)",
                        f"{kind_ja}ファイルの部品「{name}」が、宣言されたサイズを超えて展開されるため受け付けません"
                        "（ZIP爆弾の可能性があります）",
                    )
    except (zipfile.BadZipFile, zlib.error, EOFError, RuntimeError, NotImplementedError) as exc:
        # RuntimeError: an encrypted member; NotImplementedError: a compression method zipfile lacks.
        raise corrupt(kind, kind_ja, str(exc)) from exc


def _check_directory(members: list[zipfile.ZipInfo], max_file_bytes: int, kind: str, kind_ja: str) -> None:
    if len(members) > MAX_MEMBERS:
        raise LoadError(
            f"refused: the {kind} holds {len(members):,} parts, over the limit of {MAX_MEMBERS:,}",
            f"{kind_ja}ファイルの部品が{len(members):,}個あり、上限の{MAX_MEMBERS:,}個を超えているため受け付けません",
        )
    total = sum(m.file_size for m in members)
    limit = TOTAL_FACTOR * max_file_bytes
    if total > limit:
        raise LoadError(
            f"refused: the {kind} would inflate to {total / _MB:,.0f} MB, over the limit of {limit / _MB:g} MB"
            f" ({TOTAL_FACTOR} times ASSISTANT_MAX_FILE_MB; a zip bomb?)",
            f"{kind_ja}ファイルは展開すると{total / _MB:,.0f} MBになり、上限の{limit / _MB:g} MB"
            f"（ASSISTANT_MAX_FILE_MBの{TOTAL_FACTOR}倍）を超えるため受け付けません（ZIP爆弾の可能性があります）",
        )
    for member in members:
        name = member.filename[:_NAME_CHARS]
        if member.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            # Office writes only these; zipfile inflates the others (bzip2, lzma) without a bound per step.
            raise corrupt(kind, kind_ja, f"part '{name}' uses compression method {member.compress_type}")
        ratio = member.file_size / max(member.compress_size, 1)
        if member.file_size > RATIO_FLOOR_BYTES and ratio > MAX_RATIO:
            raise LoadError(
                f"refused: part '{name}' of the {kind} is compressed {ratio:,.0f} to 1, over {MAX_RATIO} to 1"
                " (a zip bomb?)",
                f"{kind_ja}ファイルの部品「{name}」の圧縮率が{ratio:,.0f}対1で、上限の{MAX_RATIO}対1を超えているため"
                "受け付けません（ZIP爆弾の可能性があります）",
            )


def _inflates_within(archive: zipfile.ZipFile, member: zipfile.ZipInfo) -> bool:
    """Whether the member inflates to no more than its declared size; BadZipFile if its CRC is wrong."""
    # zipfile cuts a member at the size it is given, and checks the CRC there: a larger size lets a
    # member that lies be read past what it declares, and left before its end.
    probe = copy.copy(member)
    probe.file_size = member.file_size + 2 * _STEP_BYTES
    inflated = 0
    with archive.open(probe) as stream:
        while chunk := stream.read(_STEP_BYTES):
            inflated += len(chunk)
            if inflated > member.file_size:
                return False
    return True
