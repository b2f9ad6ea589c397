"""Progress of long library calls: the stages ``train`` and ``evaluate`` go through
(:data:`Stage`), how far one has come (:class:`Step`) and the :class:`Progress` callable a
front end passes in to hear of them (the CLI draws them on stderr).

These types cross the seam from the library (:mod:`aggregator.train`,
:mod:`aggregator.learning`) to its front ends, so this module is stdlib only: it must not
import rich, scikit-learn or anything else heavy (a front end names these types without
wanting the training code loaded), and it must not print: what a step looks like on a
screen is the front end's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

__all__ = ["Progress", "Stage", "Step", "no_progress"]

#: The stages of the long commands, in the order ``train`` goes through them:
#: ``examples`` (collecting them), ``heldout`` (a model on ~80 % of them, scored on the
#: rest, for the manifest's held-out scores), then the model itself: ``features``
#: (vectorising the texts), ``folds`` (its out-of-fold scores, which calibration and
#: thresholds are chosen on), ``heads`` (the final per-topic heads and the relevance
#: gate), ``thresholds``, ``write`` (the artifact); then ``retag`` (stored stories).
#: ``evaluate`` goes through ``examples`` and ``cv`` (cross-validation over the users'
#: labels), or ``score`` (the stories of a gold file).
Stage = Literal[
    "examples",
    "heldout",
    "features",
    "folds",
    "heads",
    "thresholds",
    "write",
    "retag",
    "cv",
    "score",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Step:
    """How far a stage has come: ``done`` of ``total`` units (None: not known yet).
    A stage is reported once as it starts (``done`` 0) and again as units complete;
    it is over when ``done == total`` or the next stage starts. The units are whatever
    makes the bar move evenly (heads fitted, stories scored); ``note`` says in words
    where the stage is ("fold 2/5", "1,500/9,000 stories"), for people."""

    stage: Stage
    done: int
    total: int | None
    note: str = ""


class Progress(Protocol):
    """Told of each :class:`Step` of a long piece of work, in the thread doing it; it
    must be quick (it is called once per head fitted). The front end draws it (the CLI
    as a rich display on stderr); the library never prints."""

    def __call__(self, step: Step, /) -> None: ...


def no_progress(step: Step, /) -> None:
    """The default :class:`Progress`: nobody is watching."""
