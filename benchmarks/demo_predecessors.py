"""How many of the demo's live payments would be scored before the user's previous payment is
online, without the driver's wait (``python -m benchmarks.demo_predecessors``).

The demo replays the stream in chunks (scored together, recorded after) at a few hundred events/s,
so a payment is scored on stale user features when its predecessor is in the same chunk or was
recorded less than the feature service's freshness ago (``--lag`` events). Counted on the demo's
own stream, with the driver's old fixed-size chunks; frauds come in bursts, so they suffer most.
"""

from __future__ import annotations

import argparse

from services.common.events import Topics
from services.demo.config import DemoConfig
from services.simulator import SimulatorConfig, generate

CHUNK = 64  # the driver's chunk: concurrency 16 x 4


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lag", type=int, nargs="+", default=[0, 128, 256], help="events recorded but not yet online")
    args = parser.parse_args()
    demo = DemoConfig(data_dir=None)  # type: ignore[arg-type]  # only the stream's shape is read
    stream = list(
        generate(
            SimulatorConfig(
                events=demo.events, seed=demo.seed, drift_at=demo.drift_at, users=demo.users, merchants=demo.merchants
            )
        )
    )
    txn_at = [i for i, e in enumerate(stream) if e.topic == Topics.TRANSACTIONS]
    live = stream[txn_at[demo.history] :]
    print(f"{'lag (events)':>12} {'legit stale':>12} {'fraud stale':>12}")
    for lag in args.lag:
        last: dict[str, int] = {}
        stale = {True: 0, False: 0}
        total = {True: 0, False: 0}
        for i, event in enumerate(live):
            if event.topic != Topics.TRANSACTIONS:
                continue
            prev = last.get(event.key)
            total[event.is_fraud] += 1
            if prev is not None and (prev // CHUNK == i // CHUNK or i - prev <= lag):
                stale[event.is_fraud] += 1
            last[event.key] = i
        print(f"{lag:>12} {stale[False] / total[False]:>12.1%} {stale[True] / total[True]:>12.1%}")
    print(f"live payments: {total[False]:,} legit, {total[True]:,} fraud")


if __name__ == "__main__":
    main()
