"""``sfjwt cache list|clear``: the on-disk token cache shared by processes (never a token shown)."""
from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Dict, List, Optional

from ..config import resolve_settings, token_cache_value
from ..sharing.diskcache import TokenStore, default_folder
from . import jsonout
from .base import EXIT_OK, UsageError, err


@dataclass(frozen=True)
class EntryInfo:
    """What ``sfjwt cache list`` shows of one entry file, read from its plaintext header without
    any key (never a token). ``problem`` is empty for a readable entry, else why it cannot be used."""

    path: Path
    username: str = ""
    consumer_key: str = ""  # masked
    token_url: str = ""
    audience: str = ""
    key_id: str = ""
    instance_url: str = ""
    org_id: str = ""
    user_id: str = ""
    issued_at: float = 0.0
    problem: str = ""

    @property
    def age(self) -> float:
        """Seconds since the token was issued."""
        return max(0.0, time.time() - self.issued_at) if self.issued_at else 0.0


def _printable(text: str) -> str:
    """``text`` with every character a terminal could act on (C0 and C1 controls, DEL,
    bidirectional and other format characters, line separators) written as its escape
    (``\\x1b``, ``\\u202e``): an entry's header is read before anything verifies it."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def _info_from(path: Path, header: Dict[str, object]) -> EntryInfo:
    def text(name: str) -> str:
        value = header.get(name)
        return _printable(value) if isinstance(value, str) else ""

    issued = header.get("issued_at")
    return EntryInfo(
        path=path, username=text("username"), consumer_key=text("consumer_key"), token_url=text("token_url"),
        audience=text("audience"), key_id=text("key_id"), instance_url=text("instance_url"),
        org_id=text("org_id"), user_id=text("user_id"),
        issued_at=float(issued) if isinstance(issued, (int, float)) and not isinstance(issued, bool) else 0.0,
    )


def entries(store: TokenStore) -> List[EntryInfo]:
    """Every entry file of the store's folder, from its plaintext header (no key needed, no
    token shown); unusable files come with ``problem`` set. Sorted by username."""
    found = [
        EntryInfo(path=path, problem=header) if isinstance(header, str) else _info_from(path, header)
        for path, header in store.headers()
    ]
    return sorted(found, key=lambda info: (info.username, info.token_url, str(info.path)))


def _cache_folder(args: argparse.Namespace) -> str:
    """--folder, else a token_cache path from SF_TOKEN_CACHE / the profile, else the default."""
    if args.folder:
        value = token_cache_value(args.folder, "--folder")
        if isinstance(value, str):
            return value
        raise UsageError(f"--folder {args.folder!r} is not a folder path")
    profile = {"profile": args.profile} if getattr(args, "profile", None) else {}
    setting = resolve_settings(**profile).token_cache
    return setting if isinstance(setting, str) else str(default_folder())


def _age(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.0f} days"


def cmd_cache(args: argparse.Namespace, out: IO[str]) -> int:
    folder = _cache_folder(args)
    store = TokenStore(folder)
    if getattr(args, "json", False):
        return _cache_json(args, store, folder, out)
    if args.action == "clear":
        removed = store.clear()
        out.write(f"removed {removed} cached token{'' if removed == 1 else 's'} from {folder}\n")
        return EXIT_OK
    listed = entries(store)
    if not listed:
        err(f"no cached tokens in {folder}")
        return EXIT_OK
    rows = [("user", "instance", "org", "age", "token URL", "key", "problem")]
    for info in listed:
        rows.append((
            info.username or "?", info.instance_url or "?", info.org_id or "?",
            _age(info.age) if info.issued_at else "?", info.token_url or "?",
            info.key_id[:19] or "?", info.problem,
        ))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        out.write("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() + "\n")
    err(f"{len(listed)} cached login{'' if len(listed) == 1 else 's'} in {folder} (tokens are never shown)")
    return EXIT_OK


def _cache_json(args: argparse.Namespace, store: TokenStore, folder: str, out: IO[str]) -> int:
    """cache --json: list -> the entries (never a token), clear -> how many were removed."""
    if args.action == "clear":
        result: Dict[str, Any] = {"folder": folder, "removed": store.clear()}
    else:
        fields = ("username", "instance_url", "org_id", "user_id", "token_url", "key_id", "problem")
        listed = [dict({_camel(name): getattr(info, name, "") or None for name in fields},
                       issuedAt=_utc(getattr(info, "issued_at", 0)),
                       ageSeconds=round(info.age) if getattr(info, "issued_at", 0) else None)
                  for info in entries(store)]
        result = {"folder": folder, "entries": listed}
    jsonout.write(out, jsonout.success(result, args.collected))
    return EXIT_OK


def _utc(seconds: float) -> Optional[str]:
    import datetime

    if not seconds:
        return None
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)
