"""Read-only looks at the running services over their HTTP endpoints (what an operator would curl)."""

from __future__ import annotations

from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

# One client for every probe: ``httpx.get`` builds a client, and with it an SSL context, per call
# (~10 ms of CPU), and the demo probes twice a second for minutes. httpx.Client is thread-safe.
_CLIENT = httpx.Client()


def get_json(url: str, timeout_s: float = 5.0) -> Any:
    """The JSON at ``url``, or None when the service does not answer 200 yet."""
    try:
        resp = _CLIENT.get(url, timeout=timeout_s)
    except httpx.HTTPError:
        return None
    return resp.json() if resp.status_code == 200 else None


def _answers(url: str) -> bool:
    try:
        return _CLIENT.get(url, timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def is_ready(base_url: str) -> bool:
    return _answers(f"{base_url}/readyz")


def is_live(base_url: str) -> bool:
    return _answers(f"{base_url}/livez")


def metric_total(base_url: str, name: str, **labels: str) -> float:
    """Sum of a Prometheus metric's samples (optionally filtered by labels); 0 when unreachable."""
    try:
        text = _CLIENT.get(f"{base_url}/metrics", timeout=5.0).text
    except httpx.HTTPError:
        return 0.0
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name != name:
                continue
            if all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total
