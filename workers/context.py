"""What every job function receives from arq, and who this worker is."""

import os
import socket
from typing import Any

# arq passes a plain dict; ours carries `services` next to arq's own keys.
JobContext = dict[str, Any]


def worker_name() -> str:
    """This worker process as `hostname:pid`."""
    return f"{socket.gethostname()}:{os.getpid()}"
