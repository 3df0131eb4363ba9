"""Settings of the monthly report (slotguard/reports/): the `[mail]` keys about it, mixed into
`Mail` (slotguard/config/sections.py) so they sit beside the digest's."""

from __future__ import annotations

from pydantic import Field

from slotguard.config.types import Strict


class MonthlyReportMail(Strict):
    monthly_report: bool = Field(
        True,
        description="A monthly report to practice.email on the first working morning (Monday to Friday) of each month, "
        "at mail.digest_hour (7 when the digest is off), about the month before: no-shows and late cancellations, "
        "fees, what came back, clients to talk to, with charts. Sent once per month; false sends none "
        "(`main.py report` still writes it to a file).",
        examples=[False],
    )
