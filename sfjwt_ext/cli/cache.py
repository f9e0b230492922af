"""``sfjwt cache list|clear``: the on-disk token cache shared by processes (never a token shown)."""
from __future__ import annotations

import argparse
from typing import IO, Any, Dict, Optional

from ..config import resolve_settings, token_cache_value
from ..sharing.diskcache import TokenStore, default_folder
from . import jsonout
from .base import EXIT_OK, UsageError, err


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
    entries = store.entries()
    if not entries:
        err(f"no cached tokens in {folder}")
        return EXIT_OK
    rows = [("user", "instance", "org", "age", "token URL", "key", "problem")]
    for info in entries:
        rows.append((
            info.username or "?", info.instance_url or "?", info.org_id or "?",
            _age(info.age) if info.issued_at else "?", info.token_url or "?",
            info.key_id[:19] or "?", info.problem,
        ))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        out.write("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() + "\n")
    err(f"{len(entries)} cached login{'' if len(entries) == 1 else 's'} in {folder} (tokens are never shown)")
    return EXIT_OK


def _cache_json(args: argparse.Namespace, store: Any, folder: str, out: IO[str]) -> int:
    """cache --json: list -> the entries (never a token), clear -> how many were removed."""
    if args.action == "clear":
        result: Dict[str, Any] = {"folder": folder, "removed": store.clear()}
    else:
        fields = ("username", "instance_url", "org_id", "user_id", "token_url", "key_id", "problem")
        entries = [dict({_camel(name): getattr(info, name, "") or None for name in fields},
                        issuedAt=_utc(getattr(info, "issued_at", 0)),
                        ageSeconds=round(info.age) if getattr(info, "issued_at", 0) else None)
                   for info in store.entries()]
        result = {"folder": folder, "entries": entries}
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
