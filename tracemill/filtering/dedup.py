"""Duplicate detection: word normalisation, n-gram hashes (contamination), MinHash (near duplicates)."""

from __future__ import annotations

import hashlib
import re
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tracemill.filtering.config import NearDuplicateConfig

# --- normalisation and hashing --------------------------------------------------------------------

_WORD = re.compile(r"\w+")


def words(text: str | None) -> list[str]:
    """Lower-case word tokens: punctuation, case and whitespace do not make texts differ."""
    return _WORD.findall(text.lower()) if text else []


def sample_text(row: Mapping[str, Any]) -> str:
    return f"{row.get('reasoning') or ''}\n{row.get('response') or ''}"


def sample_words(row: dict[str, Any]) -> list[str]:
    """The words of a sample's reasoning and response, computed once per row for both duplicate filters."""
    if "_words" not in row:
        row["_words"] = words(sample_text(row))
    return row["_words"]


def _hash64(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def ngram_hashes(text: str | None, n: int) -> set[int]:
    """Stable 64-bit hashes of the word n-grams of ``text``; a shorter text is one n-gram."""
    tokens = words(text)
    if not tokens:
        return set()
    if len(tokens) <= n:
        return {_hash64(" ".join(tokens))}
    return {_hash64(" ".join(tokens[i : i + n])) for i in range(len(tokens) - n + 1)}


@dataclass(frozen=True, eq=False)
class NgramIndex:
    """The n-grams of a set of benchmark texts, as a sorted array (cheap to hand to every shard task)."""

    n: int
    hashes: np.ndarray  # sorted unique uint64

    @classmethod
    def build(cls, texts: Iterable[str | None], n: int) -> NgramIndex:
        found: set[int] = set()
        for text in texts:
            found |= ngram_hashes(text, n)
        return cls(n, np.unique(np.fromiter(found, dtype=np.uint64, count=len(found))))

    def overlaps(self, text: str | None) -> bool:
        grams = np.fromiter(ngram_hashes(text, self.n), dtype=np.uint64)
        if not grams.size or not self.hashes.size:
            return False
        at = np.minimum(np.searchsorted(self.hashes, grams), self.hashes.size - 1)
        return bool((self.hashes[at] == grams).any())


_PRIME = np.uint64(4_294_967_311)  # the first prime above 2**32: a*x + b stays below 2**64


class MinHasher:
    """A small MinHash: CRC32 words, rotate-xor shingles, ``num_perm`` universal hashes (a*x + b) mod p."""

    def __init__(self, config: NearDuplicateConfig):
        rng = np.random.default_rng(config.seed)
        self.a = rng.integers(1, 2**31, size=config.num_perm, dtype=np.uint64)
        self.b = rng.integers(0, 2**31, size=config.num_perm, dtype=np.uint64)
        self.shingle = config.shingle

    def signatures(self, token_lists: Sequence[Sequence[str]]) -> np.ndarray:
        """One signature per text, as rows; texts of at least ``shingle`` words share one vectorised pass."""
        out = np.full((len(token_lists), self.a.size), _PRIME, dtype=np.uint64)
        lengths = np.fromiter(map(len, token_lists), dtype=np.int64, count=len(token_lists))
        for i in np.flatnonzero((lengths > 0) & (lengths < self.shingle)):  # short texts: one shingle of all
            out[i] = self._min_hashes(self._shingles(self._hashed(token_lists[i]), len(token_lists[i])))
        full = np.flatnonzero(lengths >= self.shingle)
        if full.size:
            hashed = self._hashed([token for i in full for token in token_lists[i]])
            shingles = self._shingles(hashed, self.shingle)
            # Keep the shingles that lie inside one text: text r's start at its offset, len - shingle + 1 of them.
            per_text = lengths[full] - self.shingle + 1
            offsets = np.concatenate(([0], np.cumsum(lengths[full])[:-1]))
            firsts = np.concatenate(([0], np.cumsum(per_text)[:-1]))
            inside = np.arange(per_text.sum()) + np.repeat(offsets - firsts, per_text)
            out[full] = np.minimum.reduceat(self._hashes(shingles[inside]), firsts, axis=0)
        return out

    @staticmethod
    def _hashed(tokens: Sequence[str]) -> np.ndarray:
        return np.fromiter(map(zlib.crc32, map(str.encode, tokens)), dtype=np.uint64, count=len(tokens))

    @staticmethod
    def _shingles(hashed: np.ndarray, width: int) -> np.ndarray:
        count = len(hashed) - width + 1
        shingles = np.zeros(count, dtype=np.uint64)
        for j in range(width):  # rotate word j of the shingle by j bits, so word order matters
            part = hashed[j : j + count]
            shingles ^= ((part << np.uint64(j)) | (part >> np.uint64(32 - j))) & np.uint64(0xFFFFFFFF)
        return shingles

    def _hashes(self, shingles: np.ndarray) -> np.ndarray:
        return (np.outer(shingles, self.a) + self.b) % _PRIME

    def _min_hashes(self, shingles: np.ndarray) -> np.ndarray:
        return self._hashes(shingles).min(axis=0)


# --- group filters: one problem's surviving samples, in sample order ------------------------------


def exact_duplicates(rows: Sequence[dict[str, Any]]) -> list[str | None]:
    seen: set[str] = set()
    reasons: list[str | None] = []
    for row in rows:
        key = " ".join(sample_words(row))
        reasons.append("duplicate" if key in seen else None)
        seen.add(key)
    return reasons


def near_duplicates(rows: Sequence[dict[str, Any]], hasher: MinHasher, threshold: float) -> list[str | None]:
    signatures = hasher.signatures([sample_words(row) for row in rows])
    kept: list[int] = []
    reasons: list[str | None] = []
    for i, signature in enumerate(signatures):
        if kept and (signatures[kept] == signature).mean(axis=1).max() >= threshold:
            reasons.append("near_duplicate")
        else:
            reasons.append(None)
            kept.append(i)
    return reasons
