"""``python -m services.inference.drain --seconds N``: the inference pod's preStop hook.

It asks the local service to drain (``POST /admin/drain``: from then on every answer closes its
connection, so clients on kept-alive connections move to a ready pod after their next answer),
then waits ``N`` seconds while the endpoint removal propagates, as the plain ``sleep`` of the
other services does. The kubelet sends SIGTERM when it returns. A failed drain request is
reported and the wait still happens: the hook must never shorten the pod's grace.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

import httpx

from services.common.settings import SettingsError, get_settings


def request_drain(port: int, token: str, timeout_s: float = 2.0) -> str | None:
    """None when the service drains now, else why not."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        response = httpx.post(f"http://127.0.0.1:{port}/admin/drain", headers=headers, timeout=timeout_s)
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}"
    return None if response.status_code == 202 else f"HTTP {response.status_code}: {response.text[:200]}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.inference.drain", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="how long to wait after asking to drain")
    args = parser.parse_args(argv)
    if args.seconds < 0:
        parser.error(f"--seconds must be >= 0, got {args.seconds}")
    try:
        settings = get_settings()
    except SettingsError as exc:
        print(f"drain: {exc}", file=sys.stderr)
        time.sleep(args.seconds)
        return 1
    problem = request_drain(settings.inference_port, settings.api_token.get_secret_value())
    print(f"drain: {'draining' if problem is None else 'not draining: ' + problem}", flush=True)
    time.sleep(args.seconds)
    return 0 if problem is None else 1


if __name__ == "__main__":
    sys.exit(main())
