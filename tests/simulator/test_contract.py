"""Data tests: every simulated event satisfies the event contract and its topic's key rule."""

from __future__ import annotations

import json

from jsonschema import Draft202012Validator

from services.common.events import Label, Topics, Transaction, decode, encode
from services.common.settings import REPO_ROOT
from services.simulator import SimEvent


def test_every_event_validates_against_the_contract(drift_events: list[SimEvent]) -> None:
    for sim in drift_events:
        model = Transaction if sim.topic == Topics.TRANSACTIONS else Label
        raw = encode(sim.event)
        assert decode(model, raw) == sim.event
        payload = json.loads(raw)
        assert payload["schema_version"] == 1
        assert payload["timestamp"].endswith("Z")


def test_keys_and_topics_follow_the_contract(drift_events: list[SimEvent]) -> None:
    for sim in drift_events:
        event = sim.event
        if isinstance(event, Transaction):
            assert sim.topic == Topics.TRANSACTIONS and sim.key == event.user_id
            assert (sim.pattern == "legit") == (not sim.is_fraud)
        else:
            assert sim.topic == Topics.LABELS and sim.key == event.transaction_id
            assert sim.is_fraud == event.is_fraud


def test_identifiers_are_unique_and_well_formed(drift_events: list[SimEvent]) -> None:
    txns = [s.event for s in drift_events if isinstance(s.event, Transaction)]
    ids = [t.transaction_id for t in txns]
    assert len(set(ids)) == len(ids)
    assert all(t.transaction_id.startswith("t-") and t.user_id.startswith("u-") for t in txns)
    assert all(t.merchant_id.startswith("m-") for t in txns)
    assert all(t.device_id is None or t.device_id.startswith("d-") for t in txns)


def test_simulated_time_never_goes_backwards(drift_events: list[SimEvent]) -> None:
    stamps = [s.event.timestamp for s in drift_events]
    assert stamps == sorted(stamps)


def test_events_match_the_published_json_schemas(drift_events: list[SimEvent]) -> None:
    schemas = REPO_ROOT / "docs" / "schemas"
    validators = {
        Topics.TRANSACTIONS: Draft202012Validator(json.loads((schemas / "transaction.schema.json").read_text())),
        Topics.LABELS: Draft202012Validator(json.loads((schemas / "label.schema.json").read_text())),
    }
    for sim in drift_events[::7]:  # a spread sample: every pattern and label kind appears in it
        validators[sim.topic].validate(json.loads(encode(sim.event)))
