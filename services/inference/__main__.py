"""``python -m services.inference``: serve the scoring API with BentoML on RTML_INFERENCE_PORT."""

from __future__ import annotations

import os
import sys

from services.common.settings import REPO_ROOT, SettingsError, get_settings


def main() -> None:
    try:
        settings = get_settings()
    except SettingsError as exc:
        sys.exit(f"inference: {exc}")
    command = [
        sys.executable, "-m", "bentoml", "serve", "services.inference.service:FraudScoring",
        "--host", settings.bind_host,
        "--port", str(settings.inference_port),
        "--working-dir", str(REPO_ROOT),
        # uvicorn's default (5 s) equals httpx's idle expiry: both ends closing at once lost a request
        # in the demo (a ReadError in 14,175); see the setting's description.
        "--timeout-keep-alive", str(settings.inference_keep_alive_s),
    ]
    # Replace this process, so the supervisor's (or kubelet's) SIGTERM reaches BentoML directly.
    os.execv(sys.executable, command)  # noqa: S606 - fixed argv, no shell


if __name__ == "__main__":
    main()
