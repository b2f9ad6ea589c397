"""The model in use, without an App: what ``App.predictor`` and ``aggregator classify``
load. A module of its own so that importing it costs nothing: ``classify`` needs no store,
and the CLI no longer imports the App (SQLAlchemy, SQLModel) before a command needs it.
numpy and scikit-learn load when the model does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .classify import Classifier
    from .config import Settings
    from .scoring import Scorer
    from .taxonomy import Taxonomy


def load_predictor(
    settings: Settings,
    taxonomy: Taxonomy,
    *,
    pipeline: Callable[[], Classifier] | None = None,
) -> Classifier | Scorer:
    """The model in use as :attr:`App.predictor` has it (the numpy scorer, else the
    pipeline), without a store: ``aggregator classify`` needs no database, and opening
    one created a data directory wherever it ran."""
    from .manifest import check_artifact
    from .scoring import load_scorer

    scorer = load_scorer(settings.active_models_dir, taxonomy)
    if scorer is not None:
        return scorer
    # why there is no model, told without importing scikit-learn
    check_artifact(settings.active_models_dir, taxonomy, checksum=False)
    if pipeline is not None:
        return pipeline()
    from .classify import Classifier

    return Classifier.load(settings.active_models_dir, taxonomy=taxonomy)
