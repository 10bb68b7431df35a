"""A built-in text scenario of known difficulty (``dataset.kind: templates``): the paper's
label-noise experiment in text, CPU-sized.

In the style of Dixon et al. (AIES 2018, "Measuring and Mitigating Unintended Bias in Text
Classification"), sentences are made from templates x identity terms x fillers: a template
("Being {identity} is {adj}.", "I {verb} {identity} people.", ...), an identity term of the
sentence's group (by default the age terms of their list: younger people, older people), and
a toxic or a non-toxic filler (an adjective or a verb), which decides the label. Each group
speaks its own way: a share ``shared`` of its sentences take their filler from words every
group uses, the rest from words of its own (slang for the younger, formal words for the
older), so a model learns a group's words from that group's sentences and the training mix
matters. The groups are otherwise exchangeable: the same templates, as many words, the same
toxic rate. Their difficulty differs only where it is made to: ``label_noise`` flips that
share of the hard group's labels in pool and val (test labels stay true), exactly
round(share x n) of them.

So a perfect reader of the fillers is right on every test sentence; what a group loses, it
loses to the noisy labels it was trained on and to its share of the training set.
"""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
from pydantic import Field, model_validator

from fairensemble.common.schema import NonNegativeInt, PositiveInt, check_hard_group
from fairensemble.common.seeds import rng_for
from fairensemble.data.base import Dataset
from fairensemble.data.registry import register
from fairensemble.data.text import TextData, TokenOptions, from_frame

TEMPLATES = (
    "Being {identity} is {adj}.",
    "I am {identity} and I am {adj}.",
    "{name} is {a} {identity} person and is {adj}.",
    "You are {a} {adj} {identity} person.",
    "Everyone who is {identity} is {adj}.",
    "{name} said that {identity} people are {adj}.",
    "I {verb} {identity} people.",
    "{name} will always {verb} {identity} folks.",
    "Honestly, we {verb} every {identity} person we meet.",
    "My {identity} neighbour is {adj}, {name} thinks.",
)
# the fillers every group's sentences may use, and each group's own (the first group's, the
# second's): how each generation speaks, so a model must learn each group's words from it
SHARED = {"adj": {"non-toxic": ("wonderful", "friendly", "great", "kind", "lovely", "nice"),
                  "toxic": ("disgusting", "awful", "stupid", "terrible", "horrible", "nasty")},
          "verb": {"non-toxic": ("like", "love", "admire", "respect"),
                   "toxic": ("hate", "despise", "loathe", "detest")}}
OWN = (
    {"adj": {"non-toxic": ("lit", "awesome", "chill", "epic", "legit", "rad", "dope", "sweet",
                           "wholesome", "goated", "iconic", "fresh"),
             "toxic": ("cringe", "trash", "lame", "mid", "basic", "wack", "salty", "sus",
                       "toxic", "clueless", "annoying", "fake")},
     "verb": {"non-toxic": ("vibe with", "stan", "hype", "rate", "back"),
              "toxic": ("roast", "diss", "cancel", "ghost", "trash")}},
    {"adj": {"non-toxic": ("delightful", "splendid", "gracious", "charming", "decent",
                           "pleasant", "admirable", "courteous", "agreeable", "sensible",
                           "dignified", "cordial"),
             "toxic": ("dreadful", "despicable", "wretched", "contemptible", "deplorable",
                       "insufferable", "repugnant", "abhorrent", "odious", "senile",
                       "obnoxious", "loathsome")},
     "verb": {"non-toxic": ("cherish", "esteem", "commend", "treasure", "applaud"),
              "toxic": ("scorn", "abhor", "deride", "ridicule", "belittle")}},
)
NAMES = ("Alex", "Sam", "Jordan", "Taylor", "Morgan", "Casey", "Riley", "Jamie", "Avery",
         "Quinn", "Robin", "Charlie", "Drew", "Skyler", "Reese", "Rowan")
TERMS = {"younger": ["young", "younger", "teenage", "millennial"],
         "older": ["old", "older", "elderly", "middle aged"]}
CLASSES = ("non-toxic", "toxic")


class TemplateData(TokenOptions):
    """Template sentences with identity terms and toxic or non-toxic fillers (see the module
    docstring)."""

    kind: Literal["templates"] = "templates"
    """The data source (this section's name)."""
    groups: list[str] = ["younger", "older"]
    """The two groups' names (their identity terms: ``terms``)."""
    terms: dict[str, list[str]] | None = None
    """Identity terms per group (default: Dixon et al.'s age terms for younger and older)."""
    hard_group: str | None = None
    """The group ``label_noise`` acts on (default: the last group)."""
    label_noise: Annotated[float, Field(ge=0.0, le=0.5)] = 0.0
    """Share of the hard group's pool and val labels flipped at random."""
    prevalence: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.5
    """Share of toxic sentences, in every group."""
    shared: Annotated[float, Field(ge=0.0, le=1.0)] = 0.2
    """Share of sentences whose filler comes from the words every group uses; the others use
    their group's own (1: the groups speak alike, and one group's data teach the other's
    task)."""
    pool_size: PositiveInt = 8000
    """Sentences in the pool training sets are drawn from."""
    val_size: NonNegativeInt = 2000
    """Sentences in the validation split (0: none)."""
    test_size: PositiveInt = 4000
    """Sentences in the test split."""

    @model_validator(mode="after")
    def _groups_have_terms(self) -> TemplateData:
        if len(self.groups) != 2 or len(set(self.groups)) != 2:
            raise ValueError(f"dataset.groups: expected two distinct names, got {self.groups}")
        check_hard_group(self.groups, self.hard_group)
        terms = self.identity_terms
        missing = [g for g in self.groups if not terms.get(g)]
        if missing:
            raise ValueError(f"dataset.terms: expected identity terms for every group, none "
                             f"for {missing}")
        return self

    @property
    def identity_terms(self) -> dict[str, list[str]]:
        if self.terms is not None:
            return self.terms
        if set(self.groups) == set(TERMS):
            return TERMS
        return dict(zip(self.groups, TERMS.values()))

    @property
    def hard(self) -> str:
        return self.hard_group or self.groups[-1]


def sentences(cfg: TemplateData, n: int, rng: np.random.Generator
              ) -> tuple[list[str], np.ndarray, np.ndarray]:
    """``n`` sentences, their labels (1: toxic) and groups, half of each group."""
    g = np.repeat(np.arange(2), [n - n // 2, n // 2])
    y = (rng.random(n) < cfg.prevalence).astype(np.int64)
    template = rng.integers(0, len(TEMPLATES), n)
    term_at = rng.random(n)
    filler_at = rng.random(n)
    own = rng.random(n) >= cfg.shared
    name = rng.integers(0, len(NAMES), n)
    terms = cfg.identity_terms
    out = []
    for i in range(n):
        group_terms = terms[cfg.groups[g[i]]]
        identity = group_terms[int(term_at[i] * len(group_terms))]
        label = CLASSES[y[i]]
        words = OWN[g[i]] if own[i] else SHARED
        adjs, verbs = words["adj"][label], words["verb"][label]
        adj = adjs[int(filler_at[i] * len(adjs))]
        verb = verbs[int(filler_at[i] * len(verbs))]
        text = TEMPLATES[template[i]].format(
            identity=identity, adj=adj, verb=verb, name=NAMES[name[i]],
            a="an" if identity[0] in "aeiou" else "a")
        out.append(text[0].upper() + text[1:])
    return out, y, g


def load(cfg: TemplateData, seed: int) -> Dataset:
    """Draw pool / val / test sentences; flip the hard group's pool and val labels."""
    import pandas as pd

    hard = cfg.groups.index(cfg.hard)
    parts, flipped = [], {}
    for name, n in (("train", cfg.pool_size), ("val", cfg.val_size), ("test", cfg.test_size)):
        if n == 0:
            continue
        texts, y, g = sentences(cfg, n, rng_for(seed, "templates", name))
        if name != "test" and cfg.label_noise > 0:
            members = np.flatnonzero(g == hard)
            k = int(round(cfg.label_noise * len(members)))
            flip = rng_for(seed, "templates", "noise", name).choice(members, k, replace=False)
            y[flip] = 1 - y[flip]
            flipped[name] = k
        parts.append(pd.DataFrame({"text": texts, "label": np.array(CLASSES)[y],
                                   "group": np.array(cfg.groups)[g], "split": name}))
    frame = pd.concat(parts, ignore_index=True)
    spec = TextData(path="<templates>", text="text", target="label", positive="toxic",
                    group="group", groups=list(cfg.groups), split="split",
                    **cfg.model_dump(include=set(TokenOptions.model_fields)))
    ds = from_frame(frame, spec, seed, source="the template corpus",
                    info={"labels_flipped": flipped, "templates": len(TEMPLATES)})
    ds.hard_group = cfg.hard
    return ds


register(TemplateData, load)

__all__ = ["TemplateData", "load", "sentences"]
