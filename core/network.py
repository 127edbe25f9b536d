"""Quick reachability checks, so that offline machines fail in seconds instead of retrying.

Hub clients (huggingface_hub, facexlib, insightface) retry or hang for minutes when there is no
network; a TCP connect with a short timeout answers first.
"""

from __future__ import annotations

import os
import socket
from urllib.parse import urlparse


def host_reachable(host: str, port: int = 443, timeout_s: float = 3.0) -> bool:
    """True when ``host:port`` accepts a TCP connection within ``timeout_s`` seconds."""
    try:
        with socket.create_connection((host, port), timeout_s):
            return True
    except OSError:
        return False


def hub_endpoint_reachable(timeout_s: float = 3.0) -> bool:
    """True when the Hugging Face endpoint (``$HF_ENDPOINT``) answers and offline mode is off."""
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        return False
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    return host_reachable(url.hostname or "huggingface.co", url.port or 443, timeout_s)
