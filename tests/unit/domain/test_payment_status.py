"""PaymentStatus names every payment_status the code writes or reads, and is stored as the
same string as before (the ledger's JSON context and its LIKE queries are unchanged)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from slotguard.domain.model import OWED
from slotguard.domain.payment_status import PaymentStatus

ROOT = Path(__file__).resolve().parents[3]
# "payment_status": "paid", context["payment_status"] = "paid", .get("payment_status") == "unpaid", ... in ("unpaid", ...)
LITERAL = re.compile(r'payment_status["\']\)?\]?\s*(?:==|!=|=|:)\s*["\'](\w+)["\']')


def test_the_stored_text_is_the_string_it_always_was():
    context = {"payment_status": PaymentStatus.UNPAID}
    assert json.dumps(context, separators=(",", ":")) == '{"payment_status":"unpaid"}'
    assert PaymentStatus.PAID == "paid" and f"{PaymentStatus.RECEIVABLE}" == "receivable"
    assert "unpaid" in OWED and "receivable" in OWED and "paid" not in OWED


def test_every_payment_status_the_code_spells_out_is_a_member():
    values = {member.value for member in PaymentStatus}
    spelled = {}
    for folder in ("slotguard", "integration", "plugins"):
        for path in (ROOT / folder).rglob("*.py"):
            for found in LITERAL.findall(path.read_text(encoding="utf-8")):
                spelled.setdefault(found, path.relative_to(ROOT))
    assert "paid" in spelled  # the pattern finds what it is meant to
    assert {value: str(path) for value, path in spelled.items() if value not in values} == {}
