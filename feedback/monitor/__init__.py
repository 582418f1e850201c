"""Monitor: the loop closed into CI and operations: drift of production against the latest release, and
data checks with exit codes and JUnit reports (`checks`).
"""

from typing import TYPE_CHECKING

from ..lazy import exports

if TYPE_CHECKING:
    from .checks import check_release_folder, check_workspace, drift, junit_xml

__getattr__, __dir__, __all__ = exports(__name__, __file__)
