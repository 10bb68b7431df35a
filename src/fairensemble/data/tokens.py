"""Texts as hashed n-gram bags, the input of the built-in ``bag`` model (fastText-style).

A text is lower-cased and split into words (runs of letters, digits and ``_``, in any script;
everything else separates them). Its features are the words, the word n-grams up to
``word_ngrams`` and each word's character n-grams of lengths ``char_ngrams`` (of the word
wrapped in ``<`` and ``>``, so prefixes and suffixes are features of their own), each hashed
(crc32, stable across machines and Python versions) to one of ``buckets - 1`` ids; id 0 is
padding. A text keeps its first ``max_tokens`` features (a very long text is cut there, its
words first, then its word n-grams, then its character n-grams, so the cut keeps the most of
it); an empty or missing text has none (the model then sees a zero vector and answers with its
bias). The result is an int32 matrix [n, L] padded with 0, L the longest bag (at most
``max_tokens``).

Hashing needs no vocabulary, so there is nothing to fit: the same text always has the same
ids, in every training draw and on every machine.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fairensemble.data.base import Split

WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class HashedNgrams:
    """``Dataset.prepare`` of text sources: every split's texts as padded id bags (see the
    module docstring). Nothing is fitted on the training draw."""

    buckets: int = 1 << 15
    word_ngrams: int = 2
    char_ngrams: tuple[int, ...] = (3, 4)
    max_tokens: int = 256

    def ids(self, text: str) -> list[int]:
        """The hashed features of one text, at most ``max_tokens`` of them."""
        words = WORD.findall(text.lower())
        feats = list(words)
        for n in range(2, self.word_ngrams + 1):
            feats += [" ".join(words[i:i + n]) for i in range(len(words) - n + 1)]
        for word in words:
            wrapped = f"<{word}>"
            for n in self.char_ngrams:
                feats += ["#" + wrapped[i:i + n] for i in range(len(wrapped) - n + 1)]
        feats = feats[:self.max_tokens]
        return [1 + zlib.crc32(f.encode("utf-8")) % (self.buckets - 1) for f in feats]

    def bags(self, texts: Sequence[str], width: int | None = None) -> np.ndarray:
        """Padded id bags int32 [n, L] of ``texts`` (L: ``width``, else the longest bag)."""
        return _padded([self.ids(t) for t in texts], width)

    def __call__(self, train: Split, others: list[Split]) -> list[np.ndarray]:
        """Every split's bags, padded to one width (the longest bag of any)."""
        rows = [[self.ids(t) for t in s.X] for s in [train, *others]]
        width = max((len(r) for split in rows for r in split), default=1)
        return [_padded(split, width) for split in rows]


def _padded(rows: list[list[int]], width: int | None = None) -> np.ndarray:
    width = max(1, width if width is not None else max((len(r) for r in rows), default=1))
    out = np.zeros((len(rows), width), dtype=np.int32)
    for i, r in enumerate(rows):
        out[i, :len(r)] = r
    return out


__all__ = ["WORD", "HashedNgrams"]
