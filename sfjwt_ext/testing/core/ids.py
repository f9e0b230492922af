"""Salesforce record ids: the 15 -> 18 character case-safe checksum and new ids.

An id is a 3-character key prefix (the object: ``001`` Account, ``00D`` Organization...),
12 more base-62 characters, and (in the 18-character form) 3 checksum characters.
This is the only place the checksum is computed.
"""

from __future__ import annotations

import secrets

__all__ = ["to_18", "is_valid_id", "canonical_id", "new_id", "random_id"]

_CHECKSUM_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_ID_CHARS = frozenset(_BASE62)


_ID_BITS = str.maketrans({c: ("1" if "A" <= c <= "Z" else "0") for c in _BASE62})


def to_18(id15: str) -> str:
    """Salesforce's 15 -> 18 character id: a case-safe checksum of 3 chunks of 5 chars.

    For each chunk, bit i is set when character i is an upper-case letter; the 5-bit
    value picks a character of ``A..Z0..5``.
    """
    if len(id15) == 18:
        id15 = id15[:15]
    if len(id15) != 15:
        raise ValueError(f"a Salesforce id has 15 or 18 characters, not {len(id15)}: {id15!r}")
    bits = id15.translate(_ID_BITS)
    c = _CHECKSUM_CHARS
    return id15 + c[int(bits[4::-1], 2)] + c[int(bits[9:4:-1], 2)] + c[int(bits[14:9:-1], 2)]


def is_valid_id(value: str) -> bool:
    """True for a well-formed 15- or 18-character id (18: with the right checksum)."""
    if not isinstance(value, str) or len(value) not in (15, 18) or not set(value) <= _ID_CHARS:
        return False
    return len(value) == 15 or to_18(value[:15]) == value


def canonical_id(value: str) -> str:
    """``value`` as the org stores it: an 18-character id is case-insensitive (its last 3
    characters tell the case of the first 15), so ``0015G...HAAA`` in any case names one
    record; a 15-character id is case-sensitive and only gains its checksum. ``""`` when
    ``value`` is no id at all."""
    if not isinstance(value, str) or len(value) not in (15, 18) or not set(value) <= _ID_CHARS:
        return ""
    if len(value) == 15:
        return to_18(value)
    suffix = value[15:].upper()
    if any(c not in _CHECKSUM_CHARS for c in suffix):
        return ""
    bits = "".join(format(_CHECKSUM_CHARS.index(c), "05b")[::-1] for c in suffix)
    head = "".join(c.upper() if bit == "1" else c.lower() for c, bit in zip(value[:15], bits))
    return head + suffix if to_18(head) == head + suffix else ""


_BASE62_PAIRS = [a + b for a in _BASE62 for b in _BASE62]


def _base62(n: int, width: int) -> str:
    out = []
    pairs = _BASE62_PAIRS
    while n:
        n, r = divmod(n, 3844)
        out.append(pairs[r])
    return "".join(reversed(out)).lstrip("0").rjust(width, "0")



def new_id(key_prefix: str, n: int) -> str:
    """The ``n``-th id of an object: key prefix + ``5g`` (a pod) + ``n`` in base 62, 18 characters."""
    return to_18(key_prefix + "5g" + _base62(n, 10))


def random_id(key_prefix: str) -> str:
    """A random 18-character id with ``key_prefix`` and a valid checksum (org ids, cursors, users)."""
    return to_18(key_prefix + "".join(secrets.choice(_BASE62) for _ in range(15 - len(key_prefix))))
