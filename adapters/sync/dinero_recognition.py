"""Monthly recognition vouchers as Dinero's ledger items, for the Dinero adapter
(`adapters.sync.dinero`), their foreign-currency lines in kroner at the rates Dinero
applied to its invoices."""

from __future__ import annotations

from datetime import date, timedelta
from fractions import Fraction
from typing import Any

from subledger.adapters.sync.common import BASE_CURRENCY, converted, decimal_rate, major, minor
from subledger.adapters.sync.dinero_client import (
    NO_VAT,
    DineroClient,
    _currency,
    _field,
    _per_unit,
    guid,
)
from subledger.adapters.sync.port import RejectedError, RetryableError, Trace
from subledger.projections.messages import RecognitionMessage


class DineroRecognition(DineroClient):
    def _recognition(
        self, trace: Trace, payload: RecognitionMessage, source: str
    ) -> dict[str, Any]:
        key = guid("recognition", source)
        item = {
            "Id": key,
            "VoucherDate": payload["date"],
            "Lines": self._voucher_lines(trace, payload, source),
        }
        self._create(trace, "ledgeritems", [item], "v1.2")
        if not self.settings.book:
            return {"ledger_item": key}

        def status() -> dict[str, Any]:
            found = self._call(trace, "POST", "ledgeritems/status", json=[{"Id": key}])
            if not found:
                raise RetryableError(f"Dinero does not list ledger item {key} yet")
            return dict(found[0])

        state = status()
        if state.get("Status") == "Draft":
            self._while_stale(
                str(state["Version"]),
                lambda: str(status()["Version"]),
                lambda version: self._call(
                    trace, "POST", "ledgeritems/book", json=[{"Id": key, "Version": version}]
                ),
            )
        return {"ledger_item": key}

    def _voucher_lines(
        self, trace: Trace, payload: RecognitionMessage, source: str
    ) -> list[dict[str, Any]]:
        """The voucher's lines as Dinero's ledger items take them: each revenue account's line
        against deferred revenue as its balancing account (a positive `Amount` debits the
        account and credits the balancing one), VAT code `none` on both sides, in kroner (a
        ledger item has no currency). The voucher's deferred-revenue lines are those
        balancing sides, so they must add up to them."""
        reference = f"subledger:recognition:{source}"
        deferred = self.chart.account("deferred_revenue")
        lines: list[dict[str, Any]] = []
        balance: dict[str, int] = {}
        for line in payload["lines"]:
            debit = line["amount"] if line["side"] == "debit" else -line["amount"]
            currency = line["currency"]
            balance[currency] = balance.get(currency, 0) + debit
            if line["account"] == deferred:
                continue
            text = f"Recognized revenue {payload['month']}, {currency}"
            kroner = debit
            if currency != BASE_CURRENCY:
                rate = self._rate_of_the_day(trace, currency, payload["date"])
                kroner = converted(debit, currency, rate, BASE_CURRENCY)
                text += f" {major(debit, currency)} at {decimal_rate(rate)}"
            lines.append(
                {
                    "AccountNumber": int(self._account_no(line["account"])),
                    "BalancingAccountNumber": int(self._account_no(deferred)),
                    "Amount": major(kroner, BASE_CURRENCY),
                    "Description": f"{text} ({reference})",
                    "AccountVatCode": NO_VAT,
                    "BalancingAccountVatCode": NO_VAT,
                }
            )
        if any(balance.values()):
            raise RejectedError(f"the recognition voucher of {payload['month']} does not balance")
        return lines

    def _rate_of_the_day(self, trace: Trace, currency: str, day: str) -> Fraction:
        """Kroner per unit of `currency` as Dinero converted it on `day`, or as near before it
        as it did (else the nearest after): the rate of its invoice in that currency dated
        closest to `day` (`TotalInclVatInDkk` over `TotalInclVat`). Dinero's API offers no
        rates of its own; its invoices show the ones it applied. The invoices of `day`'s month
        are read first (Dinero's `startDate`/`endDate`), then of the year before it, then all."""
        last = date.fromisoformat(day)
        windows: list[tuple[date, date] | None] = [
            (last.replace(day=1), last),
            (last - timedelta(days=366), last),
            None,
        ]
        for window in windows:
            dated = self._rates_dated(trace, currency, window)
            before = [entry for entry in dated if entry[0] <= day]
            if before:
                return max(before)[1]
            if window is None and dated:
                return min(dated)[1]
        raise RetryableError(
            f"Dinero shows no invoice in {currency} yet, whose rate the {currency} lines of"
            " this voucher would be converted at: later"
        )

    def _rates_dated(
        self, trace: Trace, currency: str, window: tuple[date, date] | None
    ) -> list[tuple[str, Fraction]]:
        """(date, rate) of Dinero's invoices in `currency` dated within `window` (checked here
        too, whatever the list answered), or of all of them."""
        params: dict[str, Any] = {"fields": "Guid,Date,Currency,TotalInclVat,TotalInclVatInDkk"}
        if window is not None:
            params |= {"startDate": window[0].isoformat(), "endDate": window[1].isoformat()}
        dated = []
        for invoice in self._everything(trace, "invoices", **params):
            day = str(_field(invoice, "Date"))[:10]
            inside = window is None or window[0].isoformat() <= day <= window[1].isoformat()
            if _currency(invoice) != currency or not inside:
                continue
            total = minor(_field(invoice, "TotalInclVat"), currency)
            in_kroner = _field(invoice, "TotalInclVatInDkk")
            if total and in_kroner is not None:
                dated.append((day, _per_unit(minor(in_kroner, BASE_CURRENCY), total, currency)))
        return dated
