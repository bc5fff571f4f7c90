"""Scenarios outside the app: external credit inquiries (多头) and a loan going bad (M0 → M1 → M2).

``multi_lending``: 6-15 credit inquiries by distinct institutions within 2-7 days, at least 5 of them by
non-bank lenders (consumer-finance companies, micro-lenders), mostly for loan applications.
``repayment_deterioration``: an installment of an active loan falls due, is missed, is paid in part (once or
twice), and days past due roll 1 → 15 → 31 (optionally 8 and 22 in between) with ``dpd_update`` events.

Both keep their real rhythm when the span is long enough (7 days; 32 days) and are compressed in time to fit a
shorter span: the inquiries then come within the span, and a DPD "day" shrinks (on a 24 h span to about 40
minutes), while the payloads keep real values (``dpd`` 1, 15, 31; a real calendar ``due_date``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, ClassVar, Final, Literal

from streams.simulate.events import InquiryPurpose, InstitutionKind
from streams.simulate.model import ScenarioName, SimRecord
from streams.simulate.population import DAY_MS, china_date, hex_id
from streams.simulate.rhythm import daytime_ms
from streams.simulate.scenarios.base import EpisodePlan, Placement, StreamContext

MULTI_LENDING_MIN_NON_BANK: Final = 5
MULTI_LENDING_WITHIN_MS: Final = 7 * DAY_MS
BANKS: Final = tuple(f"bank_{i:03d}" for i in range(1, 31))
NON_BANKS: Final = tuple(f"nbfi_{i:03d}" for i in range(1, 121))
_ROLL_DAYS: Final = 32  # due day + 31 days past due: the real length of an M0 → M2 roll
_PURPOSES: Final[dict[InstitutionKind, tuple[InquiryPurpose, InquiryPurpose]]] = {
    "bank": ("loan_application", "credit_card"),
    "non_bank": ("loan_application", "other"),
}


@dataclass(frozen=True, slots=True)
class MultiLendingPlan(EpisodePlan):
    """Inquiries at ``times`` by ``institutions`` of ``kinds``, for ``purposes``."""

    scenario: ClassVar[ScenarioName] = "multi_lending"

    times: tuple[int, ...] = ()
    kinds: tuple[InstitutionKind, ...] = ()
    institutions: tuple[str, ...] = ()
    purposes: tuple[InquiryPurpose, ...] = ()

    def details(self) -> dict[str, Any]:
        """How many inquiries, by kind."""
        return {"inquiries": len(self.times), "non_bank": self.kinds.count("non_bank")}

    def side_records(self, ctx: StreamContext) -> list[SimRecord]:
        """The labelled inquiries."""
        em = ctx.em
        with em.tagged(self.scenario, self.episode_id):
            return [
                em.inquiry(*fields)
                for fields in zip(self.times, self.kinds, self.institutions, self.purposes, strict=True)
            ]


def plan_multi_lending(rng: random.Random, index: int, episode_id: str, place: Placement) -> MultiLendingPlan:
    """Plan a 多头 episode: its window is 2-7 days, or as much of the placement window as there is."""
    count = rng.randint(6, 15)
    banks = min(count - MULTI_LENDING_MIN_NON_BANK, sum(rng.random() < 0.15 for _ in range(count)))
    bank: InstitutionKind = "bank"
    non_bank: InstitutionKind = "non_bank"
    kinds = [bank] * banks + [non_bank] * (count - banks)
    rng.shuffle(kinds)
    bank_ids = iter(rng.sample(BANKS, banks))
    non_bank_ids = iter(rng.sample(NON_BANKS, count - banks))
    institutions = tuple(next(bank_ids) if k == "bank" else next(non_bank_ids) for k in kinds)
    # Mostly pulled for a loan application; banks now and then for a credit card, lenders for "other".
    purposes = tuple(rng.choices(_PURPOSES[k], (0.85, 0.15))[0] for k in kinds)
    # Compressed into a random half or more of the room when the room is shorter than the episode.
    window = min(rng.randint(2 * DAY_MS, MULTI_LENDING_WITHIN_MS - 1), int(place.room * rng.uniform(0.5, 1.0)))
    first = place.earliest + int(rng.random() * (place.room - window + 1))
    times = sorted(daytime_ms(rng, first, first + window) for _ in range(count))
    for n in range(1, count):  # distinct times keep the order of the records unambiguous
        times[n] = max(times[n], times[n - 1] + 1)
    return MultiLendingPlan(
        episode_id=episode_id,
        customer_index=index,
        start_ms=times[0],
        end_ms=times[-1],
        times=tuple(times),
        kinds=tuple(kinds),
        institutions=institutions,
        purposes=purposes,
    )


RepaymentStep = tuple[int, Literal["due", "missed", "partial", "dpd"], float]


@dataclass(frozen=True, slots=True)
class DeteriorationPlan(EpisodePlan):
    """A loan's installment going from due to M2: ``steps`` of (time, what, amount or DPD)."""

    scenario: ClassVar[ScenarioName] = "repayment_deterioration"

    loan_id: str = ""
    installment_no: int = 1
    amount_due: float = 0.0
    steps: tuple[RepaymentStep, ...] = ()
    compression: float = 1.0  # event-time length of a DPD "day" / a real day

    def details(self) -> dict[str, Any]:
        """The loan, the DPD values reported and how much time was compressed."""
        return {
            "loan_id": self.loan_id,
            "dpd": [int(v) for _, what, v in self.steps if what == "dpd"],
            "partial_payments": sum(what == "partial" for _, what, _ in self.steps),
            "compression": self.compression,
        }

    def side_records(self, ctx: StreamContext) -> list[SimRecord]:
        """The labelled repayment events."""
        em, out = ctx.em, []
        with em.tagged(self.scenario, self.episode_id):
            for at, what, value in self.steps:
                if what == "due":
                    out.append(em.installment_due(at, self.loan_id, self.installment_no, value, china_date(at)))
                elif what == "missed":
                    out.append(em.missed(at, self.loan_id, self.installment_no, value))
                elif what == "partial":
                    out.append(em.payment(at, self.loan_id, self.installment_no, value, "partial", on_time=False))
                else:
                    out.append(em.dpd_update(at, self.loan_id, int(value)))
        return out


def plan_deterioration(rng: random.Random, index: int, episode_id: str, place: Placement) -> DeteriorationPlan:
    """Plan an M0 → M2 roll, in real time if the placement window holds 32 days, else compressed to fit it."""
    total = rng.choice((6, 12, 12, 24))
    amount = round(rng.randrange(1_000, 30_001, 500) * (1 + 0.015 * total) / total, 2)  # equal installments
    roll = _ROLL_DAYS * DAY_MS
    # Too little room: a DPD "day" shrinks so that the roll takes 60-100 % of it.
    scale = 1.0 if place.room >= roll else place.room * rng.uniform(0.6, 1.0) / roll
    length = int(_ROLL_DAYS * DAY_MS * scale)
    first = place.earliest + int(rng.random() * (place.room - length + 1))
    first_partial = rng.uniform(3, 10)
    paid = round(amount * rng.uniform(0.2, 0.6), 2)
    plan: list[tuple[float, Literal["due", "missed", "partial", "dpd"], float]] = [
        (0.0, "due", amount),
        (1.0, "missed", amount),
        (1.1, "dpd", 1),
        (first_partial, "partial", paid),
        (15.1, "dpd", 15),
        (31.1, "dpd", 31),
    ]
    if rng.random() < 0.5:
        plan.append((8.1, "dpd", 8))
    if rng.random() < 0.5:
        plan.append((22.1, "dpd", 22))
    if rng.random() < 0.4:  # a second, smaller payment while the collectors call
        plan.append((rng.uniform(16, 30), "partial", round((amount - paid) * rng.uniform(0.1, 0.4), 2)))
    plan.sort()
    steps: list[RepaymentStep] = []
    for day, what, value in plan:
        at = first + int(day * DAY_MS * scale)
        at = max(at, steps[-1][0] + 1) if steps else at
        steps.append((at, what, value))
    return DeteriorationPlan(
        episode_id=episode_id,
        customer_index=index,
        start_ms=steps[0][0],
        end_ms=steps[-1][0],
        loan_id=hex_id(rng, "l"),
        installment_no=rng.randint(1, total),
        amount_due=amount,
        steps=tuple(steps),
        compression=round(scale, 6),
    )
