"""Write the OpenAPI schema the server serves into feedback/api/openapi.json: `python -m feedback.api`.

Run it after changing a route or a request model; tests/test_rest_api.py fails while the two differ.
"""

import json
import sys
import tempfile

from ..config_file import init_workspace
from ..server import create_app
from . import SCHEMA_PATH


def served_schema() -> dict:
    """The schema `feedback serve` serves at /openapi.json (the same for every workspace)."""
    with tempfile.TemporaryDirectory(prefix="feedback-openapi-") as folder:
        return create_app(init_workspace(folder + "/ws", dataset="openapi")).openapi()


if __name__ == "__main__":
    SCHEMA_PATH.write_text(json.dumps(served_schema(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    sys.stderr.write(f"wrote {SCHEMA_PATH}\n")
