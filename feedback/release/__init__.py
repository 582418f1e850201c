"""Release: curated labels out as immutable, versioned dataset folders that any trainer can load.

Select (`select`), split (`split`), gate (`gates`), build (`build`), write (`files`), and later
verify (`verify`) and diff (`diff`); `releases` runs them against the store and records each release;
`evaluation` trains the reference model on a release and scores it.
"""

from typing import TYPE_CHECKING

from ..lazy import exports

if TYPE_CHECKING:
    from .choices import GATES, GROUP_BY
    from .evaluation import evaluate, predict
    from .files import Destination
    from .records import list_releases
    from .releases import (
        GateFailed,
        candidate_gates,
        create_release,
        diff_releases,
        item_releases,
        lineage,
        load_release,
        release_card,
        release_config,
        show_release,
        verify_release,
    )
    from .select import Selection, row_hash

__getattr__, __dir__, __all__ = exports(__name__, __file__)
