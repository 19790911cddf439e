"""Feast definitions for the ``feast`` CLI (``feast -c feature_repo apply``).

The objects come from services.features.definitions, the same builder the services
apply in-process, placed where RTML_FEAST_DATA_URI / RTML_DATA_DIR say.
"""

from services.common.settings import get_settings
from services.feature.store import feast_data_uri
from services.features.definitions import build_repo

_settings = get_settings()
_repo = build_repo(feast_data_uri(_settings), _settings.s3_endpoint or None)

user = _repo.user
merchant = _repo.merchant
transaction = _repo.transaction
user_activity = _repo.views["user_activity"]
merchant_activity = _repo.views["merchant_activity"]
merchant_risk = _repo.views["merchant_risk"]
transaction_label = _repo.views["transaction_label"]
user_activity_push = _repo.push_sources["user_activity"]
merchant_activity_push = _repo.push_sources["merchant_activity"]
merchant_risk_push = _repo.push_sources["merchant_risk"]
transaction_label_push = _repo.push_sources["transaction_label"]
fraud_scoring = _repo.fraud_scoring
