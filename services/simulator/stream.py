"""The simulated event stream: transactions and their late labels, interleaved in simulated-time order."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, timedelta

import numpy as np
from numpy.random import PCG64, Generator

from services.common.events import Label, Topics, Transaction
from services.simulator.config import SimEvent, SimulatorConfig
from services.simulator.fraud import PATTERNS, DeviceBook, is_fraud
from services.simulator.labels import label_arrivals
from services.simulator.timeline import simulate_transactions
from services.simulator.world import CHANNELS, COUNTRIES, CURRENCIES, build_world, hex_ids

TRANSACTION, LABEL = 0, 1


def generate(config: SimulatorConfig) -> Iterator[SimEvent]:
    """Every event of the run; the same config always yields the same events in the same order.

    Labels appear at their arrival time, so they interleave with later transactions;
    those arriving after the last transaction come at the end, still in arrival order.
    """
    rng = Generator(PCG64(config.seed))
    world = build_world(rng, config.users, config.merchants)
    devices = DeviceBook(len(world.device_ids))
    txns = simulate_transactions(config, rng, world, devices)
    fraud = is_fraud(txns.pattern)
    labelled, label_ms = label_arrivals(rng, fraud, txns.time_ms, config.label_share)
    device_ids = world.device_ids + hex_ids(rng, "d-", devices.issued)
    txn_ids = [f"t-{v:016x}" for v in rng.integers(0, 2**63, len(txns), dtype=np.int64).tolist()]

    # Ties: a transaction before a label, otherwise the order things were generated in.
    times = np.concatenate((txns.time_ms, label_ms))
    kinds = np.concatenate((np.full(len(txns), TRANSACTION), np.full(len(labelled), LABEL)))
    order = np.lexsort((np.arange(len(times)), kinds, times))

    start = config.start.astimezone(UTC)
    n = len(txns)
    cols = {name: getattr(txns, name).tolist() for name in ("user", "merchant", "channel", "device", "country")}
    amounts, patterns, fraud_list = txns.amount.tolist(), txns.pattern.tolist(), fraud.tolist()
    labelled_list, times_list = labelled.tolist(), times.tolist()
    users, merchants = world.users.ids, world.merchants.ids
    for i in order.tolist():
        at = start + timedelta(milliseconds=times_list[i])
        if i < n:
            device = cols["device"][i]
            country = cols["country"][i]
            user_id = users[cols["user"][i]]
            event: Transaction | Label = Transaction(
                transaction_id=txn_ids[i],
                user_id=user_id,
                merchant_id=merchants[cols["merchant"][i]],
                amount=amounts[i],
                currency=CURRENCIES[country],
                country=COUNTRIES[country],
                channel=CHANNELS[cols["channel"][i]],  # type: ignore[arg-type]
                device_id=device_ids[device] if device >= 0 else None,
                timestamp=at,
            )
            yield SimEvent(Topics.TRANSACTIONS, user_id, event, fraud_list[i], PATTERNS[patterns[i]])
        else:
            t = labelled_list[i - n]
            event = Label(transaction_id=txn_ids[t], is_fraud=fraud_list[t], timestamp=at)
            yield SimEvent(Topics.LABELS, txn_ids[t], event, fraud_list[t], PATTERNS[patterns[t]])
