"""Seeds derived from a base seed and what they are for, written once for every stage.

A derived seed is a SHA-256 of its parts, never Python's salted ``hash()``: the same parts give the same
seed on every run and machine (a rerun redraws exactly the same samples, options and scenes), and two
keys give independent seeds. Stores depend on these values: changing them changes every dataset.
"""

from __future__ import annotations

import hashlib


def derive_seed(*parts: object, bits: int = 64) -> int:
    """The top ``bits`` bits of the SHA-256 of ``parts`` joined by a unit separator (a base seed, then keys)."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest, "big") >> (256 - bits)


def request_seed(base_seed: int, key: str) -> int:
    """The seed of one teacher request (a problem's samples, a judge's or verifier's question) from its key:
    below 2**30, so sample ``i`` of a problem can use ``request_seed + i`` within a 31-bit seed."""
    return derive_seed(base_seed, key, bits=30)
