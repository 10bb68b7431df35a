"""Seeds, random streams and stable hashes: the ground floor every random draw starts from.

Nothing here imports another fairensemble module. Two ways to name a stream:

* ``derive_seed(run_seed, *parts)``: a 32-bit seed from the run seed and any JSON-able identity
  (a cell's shares and replicate, a member index, "draws"), stable across machines;
* ``rng_for(seed, *tags)``: a generator for a named purpose inside a data source (its splits,
  its subsamples, its label flips), from the data seed and short tags.

A member's own streams (mini-batch order, early-stopping hold-out, image flips, bootstrap
resample) are spawned from its seed with the stream ids below, so each stream can be redrawn
alone and no two share numbers.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from typing import Any

import numpy as np

# Where members of a cell may differ (``train.diversity``); each names one random stream.
DIVERSITY_SOURCES = ("init", "order", "bootstrap", "augment")

# stream ids of a member's numpy streams, spawned from its seed (init uses torch's generator)
ORDER_STREAM = 1  # mini-batch order: one permutation per epoch
HOLDOUT_STREAM = 2  # early-stopping hold-out rows
AUGMENT_STREAM = 3  # horizontal flips of image batches
BOOTSTRAP_STREAM = 4  # the member's bootstrap resample of its cell's training rows


def derive_seed(run_seed: int, *parts: Any) -> int:
    """A 32-bit seed from the run seed and any JSON-able identity (stable across machines)."""
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).digest()
    key = [int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4)]
    return int(np.random.SeedSequence(run_seed, spawn_key=key).generate_state(1)[0])


def stable_hash(obj: Any, n: int = 16) -> str:
    """A short hex digest of any JSON-able value (dict keys sorted): identities and cache keys."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:n]


def rng_for(seed: int, *tags: str) -> np.random.Generator:
    """A generator seeded by the data seed and a stable name of its purpose."""
    words = [zlib.crc32(t.encode()) for t in tags]
    return np.random.default_rng(np.random.SeedSequence([int(seed), *words]))


def stream_rng(seed: int, stream: int) -> np.random.Generator:
    """The numpy generator of one of a member's streams (``ORDER_STREAM``, ...)."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(stream)]))


__all__ = ["AUGMENT_STREAM", "BOOTSTRAP_STREAM", "DIVERSITY_SOURCES", "HOLDOUT_STREAM",
           "ORDER_STREAM", "derive_seed", "rng_for", "stable_hash", "stream_rng"]
