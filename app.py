"""Start the web chat and the HTTP API: `python app.py` (the same as `assistant serve`).

Binds 127.0.0.1:7860 unless ASSISTANT_HOST / ASSISTANT_PORT say otherwise; on a fresh data directory it
first builds the model and the index from corpus/, printing progress.
"""

from __future__ import annotations

import logging


def main() -> None:
    from assistant.interfaces.server import serve
    from assistant.settings import Settings

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("assistant").setLevel(logging.INFO)
    serve(Settings())


if __name__ == "__main__":
    main()
