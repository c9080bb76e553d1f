"""One fault scenario's figures, as a row of the fault table."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Outcome:
    """One scenario's figures; ``ok`` when nothing is lost, doubled or unaccounted for."""

    scenario: str
    emitted: int = 0
    stored: int = 0  # count() FINAL
    unique: int = 0  # uniqExact(event_id)
    lost: int = 0
    doubled: int = 0  # rows beyond one per event, before FINAL
    dlq: int = 0  # distinct dead letters (component, partition, offset)
    dlq_expected: int = 0
    dlq_unmatched: int = 0  # letters for no bad message, bad messages without their letter
    rollbacks: int = 0
    rollbacks_expected: int = 0
    alert_dups: int = 0  # alert ids stored more than once (ClickHouse FINAL)
    windows: int = 0
    windows_off: int = 0
    recover_s: float | None = None
    crashes: int = 0
    problems: list[str] = field(default_factory=list)  # failed checks of one scenario
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (
            self.lost == self.doubled == self.dlq_unmatched == self.windows_off == 0
            and self.stored == self.unique == self.emitted
            and self.rollbacks == self.rollbacks_expected
            and self.alert_dups == 0
            and self.crashes == 0
            and not self.problems
        )

    COLUMNS = [
        "scenario", "emitted", "in CH (FINAL/uniq)", "lost", "doubled", "DLQ (got/want)",
        "unmatched", "rollbacks (got/want)", "windows off", "recover s", "crashes", "ok",
    ]  # fmt: skip

    def row(self) -> list[str]:
        return [
            self.scenario,
            str(self.emitted),
            f"{self.stored}/{self.unique}",
            str(self.lost),
            str(self.doubled),
            f"{self.dlq}/{self.dlq_expected}",
            str(self.dlq_unmatched),
            f"{self.rollbacks}/{self.rollbacks_expected}",
            f"{self.windows_off} of {self.windows}",
            "-" if self.recover_s is None else f"{self.recover_s:.1f}",
            str(self.crashes),
            "yes" if self.ok else "NO",
        ]
