"""The SLO verdict of a load test: p99 latency and error rate of the scoring requests, and bad input refused."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from services.loadtest.report import RunNumbers


@dataclass(frozen=True)
class Slo:
    p99_ms: float
    error_rate: float  # 0..1


@dataclass(frozen=True)
class Check:
    name: str
    target: str
    measured: str
    held: bool


@dataclass(frozen=True)
class Verdict:
    checks: tuple[Check, ...]

    @property
    def held(self) -> bool:
        return all(c.held for c in self.checks)

    def as_dict(self) -> dict[str, object]:
        return {"held": self.held, "checks": [asdict(c) for c in self.checks]}


def judge(numbers: RunNumbers, slo: Slo) -> Verdict:
    """The SLO held only if scoring requests were served, within both limits, and every malformed one got a 4xx.

    Expected rejections (malformed requests answered with a 4xx) are successes, never errors.
    """
    served = numbers.scoring_requests > 0
    return Verdict(
        checks=(
            Check("scoring requests sent", "> 0", str(numbers.scoring_requests), served),
            Check("p99 latency (scoring)", f"<= {slo.p99_ms:g} ms", f"{numbers.p99_ms:g} ms", served and numbers.p99_ms <= slo.p99_ms),
            Check(
                "error rate (scoring)",
                f"<= {slo.error_rate:.2%}",
                f"{numbers.error_rate:.2%} ({numbers.scoring_failures} of {numbers.scoring_requests})",
                served and numbers.error_rate <= slo.error_rate,
            ),
            Check(
                "malformed refused (4xx)",
                "all",
                f"{numbers.expected_rejections} of {numbers.malformed_requests} refused",
                numbers.malformed_failures == 0,
            ),
        )
    )
