"""Every rule of docs/specification.md §1.3 and every refusal kind of docs/specification.md §1, decided by the ledger (memory store)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from subledger.domain.errors import BatchRefusedError, Problem
from subledger.domain.facts import CustomerErased, CustomerUpdated
from subledger.domain.ledger import Ledger
from subledger.domain.values import CLEARED
from tests.builders import (
    append,
    cancelled,
    changed,
    closed,
    credit_note,
    customer,
    failed_payment,
    invoice,
    line,
    paused,
    payment,
    refund,
    reopened,
    resumed,
    submission,
    subscription,
)


def refused(ledger: Ledger, *facts: object) -> Problem:
    """Append the facts as one batch; it must be refused, with nothing appended."""
    before = ledger.last_position()
    with pytest.raises(BatchRefusedError) as raised:
        append(ledger, *facts)  # type: ignore[arg-type]
    assert ledger.last_position() == before, "a refused batch appended something"
    return raised.value.problems[0]


def assert_refusal(problem: Problem, code: str, field: str, index: int = 0) -> None:
    assert (problem.error.code, problem.error.field, problem.index) == (code, field, index)


@pytest.fixture
def books(memory_ledger: Ledger) -> Ledger:
    """A customer c1 with a monthly subscription s1 from 2026-01-01 and an invoice i1 of 100.00
    net (125.00 gross at 25% VAT)."""
    append(memory_ledger, customer(), subscription(), invoice(subscription_id="s1"))
    return memory_ledger


# Appending and ordering.


def test_a_batch_is_appended_in_the_order_sent(memory_ledger: Ledger) -> None:
    outcomes = append(memory_ledger, customer("c1"), customer("c2"), subscription(customer_id="c1"))
    assert [o.position for o in outcomes] == [1, 2, 3]
    logged = memory_ledger.read_log(0, 10)
    assert [type(e.event).__qualname__ for e in logged] == [
        "Customer.Created",
        "Customer.Created",
        "Subscription.Started",
    ]


def test_events_in_a_batch_may_refer_to_things_created_earlier_in_it(
    memory_ledger: Ledger,
) -> None:
    outcomes = append(
        memory_ledger, customer(), subscription(), invoice(), payment(), refund(), credit_note()
    )
    assert all(o.appended for o in outcomes)


def test_a_retried_event_is_a_duplicate_and_keeps_its_position(memory_ledger: Ledger) -> None:
    first = submission(customer())
    memory_ledger.append([first])
    outcomes = memory_ledger.append([first, submission(customer("c2"))])
    assert [(o.appended, o.position) for o in outcomes] == [(False, 1), (True, 2)]


def test_an_event_repeated_inside_one_batch_is_appended_once(memory_ledger: Ledger) -> None:
    event = submission(customer())
    outcomes = memory_ledger.append([event, event])
    assert [(o.appended, o.position) for o in outcomes] == [(True, 1), (False, 1)]
    assert memory_ledger.last_position() == 1


def test_an_event_id_reused_for_another_body_is_refused(memory_ledger: Ledger) -> None:
    memory_ledger.append([submission(customer("c1"), "evt_a")])
    with pytest.raises(BatchRefusedError) as raised:
        memory_ledger.append(
            [submission(customer("c2"), "evt_b"), submission(customer("c3"), "evt_a")]
        )
    assert_refusal(raised.value.problems[0], "EVENT_ID_REUSED", "id", index=1)
    assert memory_ledger.last_position() == 1


def test_an_event_id_reused_inside_one_batch_is_refused(memory_ledger: Ledger) -> None:
    with pytest.raises(BatchRefusedError) as raised:
        memory_ledger.append(
            [submission(customer("c1"), "evt_a"), submission(customer("c2"), "evt_a")]
        )
    assert_refusal(raised.value.problems[0], "EVENT_ID_REUSED", "id", index=1)
    assert memory_ledger.last_position() == 0


def test_a_refused_event_refuses_its_whole_batch(memory_ledger: Ledger) -> None:
    problem = refused(memory_ledger, customer("c1"), customer("c2"), invoice(customer_id="nobody"))
    assert_refusal(problem, "UNKNOWN_REFERENCE", "customer_id", index=2)
    assert append(memory_ledger, customer("c1"))[0].position == 1


# ALREADY_EXISTS: a second creation with an existing business id.


def test_a_second_customer_with_the_same_id_already_exists(books: Ledger) -> None:
    assert_refusal(refused(books, customer()), "ALREADY_EXISTS", "customer_id")


def test_a_second_subscription_with_the_same_id_already_exists(books: Ledger) -> None:
    assert_refusal(refused(books, subscription()), "ALREADY_EXISTS", "subscription_id")


def test_a_second_invoice_with_the_same_id_already_exists(books: Ledger) -> None:
    assert_refusal(refused(books, invoice()), "ALREADY_EXISTS", "invoice_id")


def test_a_payment_id_received_twice_already_exists(books: Ledger) -> None:
    append(books, payment())
    assert_refusal(refused(books, payment(amount=1)), "ALREADY_EXISTS", "payment_id")


def test_a_payment_id_used_on_another_invoice_already_exists(books: Ledger) -> None:
    append(books, invoice("i2"), payment(invoice_id="i1"))
    assert_refusal(refused(books, payment(invoice_id="i2")), "ALREADY_EXISTS", "payment_id")


def test_a_refund_id_used_twice_already_exists(books: Ledger) -> None:
    append(books, payment(), refund())
    assert_refusal(refused(books, refund()), "ALREADY_EXISTS", "refund_id")


def test_a_credit_note_id_used_twice_already_exists(books: Ledger) -> None:
    append(books, invoice("i2"), credit_note(lines=(("1", 100),)))
    problem = refused(books, credit_note(invoice_id="i2", lines=(("1", 100),)))
    assert_refusal(problem, "ALREADY_EXISTS", "credit_note_id")


# UNKNOWN_REFERENCE.


@pytest.mark.parametrize(
    ("fact", "field"),
    [
        (subscription("s2", customer_id="nobody"), "customer_id"),
        (invoice("i2", customer_id="nobody"), "customer_id"),
        (invoice("i2", subscription_id="nothing"), "subscription_id"),
        (changed("nothing"), "subscription_id"),
        (paused("nothing"), "subscription_id"),
        (cancelled("nothing"), "subscription_id"),
        (payment(invoice_id="nothing"), "invoice_id"),
        (failed_payment(invoice_id="nothing"), "invoice_id"),
        (refund(payment_id="nothing"), "payment_id"),
        (credit_note(invoice_id="nothing"), "invoice_id"),
        (credit_note(lines=(("9", 100),)), "lines[0].line_id"),
        (CustomerUpdated(customer_id="nobody", name="X"), "customer_id"),
        (CustomerErased(customer_id="nobody"), "customer_id"),
    ],
)
def test_a_reference_to_something_unknown_is_refused(
    books: Ledger, fact: object, field: str
) -> None:
    assert_refusal(refused(books, fact), "UNKNOWN_REFERENCE", field)


# RULE_VIOLATED: money in a payment, refund or credit note is in its invoice's currency.


def test_a_payment_in_another_currency_than_its_invoice_is_refused(books: Ledger) -> None:
    assert_refusal(refused(books, payment(currency="EUR")), "RULE_VIOLATED", "currency")


def test_a_failed_payment_in_another_currency_than_its_invoice_is_refused(books: Ledger) -> None:
    problem = refused(books, failed_payment(currency="SEK"))
    assert_refusal(problem, "RULE_VIOLATED", "currency")


# A line's discount_amount is at most rhu(quantity × unit_amount).


def test_a_line_discount_above_its_amount_is_refused(books: Ledger) -> None:
    too_much = line(unit_amount=999, quantity=Decimal("1.5"), discount_amount=1500)
    problem = refused(books, invoice("i2", lines=(line(), too_much)))
    assert_refusal(problem, "RULE_VIOLATED", "lines[1].discount_amount")


def test_a_line_discount_equal_to_its_rounded_amount_is_accepted(books: Ledger) -> None:
    # rhu(1.5 × 999) = rhu(1498.5) = 1499
    whole = line(unit_amount=999, quantity=Decimal("1.5"), discount_amount=1499)
    assert append(books, invoice("i2", lines=(whole,)))[0].appended


# Credits on a line never exceed its net; refunds on a payment never exceed the payment.


def test_a_credit_above_what_is_left_on_the_line_is_refused(books: Ledger) -> None:
    append(books, credit_note("cn1", lines=(("1", 6000),)))
    problem = refused(books, credit_note("cn2", lines=(("1", 4001),)))
    assert_refusal(problem, "RULE_VIOLATED", "lines[0].amount")
    assert append(books, credit_note("cn2", lines=(("1", 4000),)))[0].appended


def test_a_credit_note_without_lines_credits_what_is_left(books: Ledger) -> None:
    append(books, credit_note("cn1", lines=(("1", 2500),)), credit_note("cn2"))
    event = books.read_log(0, 100)[-1].event
    assert [(c.line_id, c.amount) for c in event.credited] == [("1", 7500)]  # type: ignore[attr-defined]
    problem = refused(books, credit_note("cn3"))
    assert_refusal(problem, "RULE_VIOLATED", "invoice_id")


def test_a_credit_note_dated_before_its_invoice_is_refused(books: Ledger) -> None:
    problem = refused(books, credit_note(issue_date=date(2025, 12, 31)))
    assert_refusal(problem, "RULE_VIOLATED", "issue_date")


def test_refunds_above_the_payment_are_refused(books: Ledger) -> None:
    append(books, payment(amount=12500), refund("r1", amount=10000))
    assert_refusal(refused(books, refund("r2", amount=2501)), "RULE_VIOLATED", "amount")
    assert append(books, refund("r2", amount=2500))[0].appended


def test_a_refund_of_a_payment_that_only_failed_is_refused(books: Ledger) -> None:
    append(books, failed_payment())
    assert_refusal(refused(books, refund()), "RULE_VIOLATED", "payment_id")


def test_a_payment_may_fail_and_later_be_received_under_its_id(books: Ledger) -> None:
    outcomes = append(books, failed_payment(), failed_payment(), payment())
    assert all(o.appended for o in outcomes)


def test_a_received_payment_cannot_fail_afterwards(books: Ledger) -> None:
    append(books, payment())
    assert_refusal(refused(books, failed_payment()), "RULE_VIOLATED", "payment_id")


# Nothing happens to a subscription on or after its cancellation's effective_date.


@pytest.mark.parametrize(
    "fact",
    [
        changed(effective_date=date(2026, 6, 1)),
        changed(effective_date=date(2026, 7, 1)),
        paused(on=date(2026, 6, 1)),
        cancelled(on=date(2026, 6, 2)),
    ],
)
def test_nothing_happens_on_or_after_a_cancellation(books: Ledger, fact: object) -> None:
    append(books, cancelled(on=date(2026, 6, 1)))
    assert_refusal(refused(books, fact), "RULE_VIOLATED", "effective_date")


def test_a_change_dated_before_an_existing_cancellation_is_accepted(books: Ledger) -> None:
    append(books, cancelled(on=date(2026, 6, 1)))
    assert append(books, changed(effective_date=date(2026, 3, 1)))[0].appended


def test_a_second_cancellation_may_end_the_service_earlier(books: Ledger) -> None:
    append(books, cancelled(on=date(2026, 6, 1)))
    assert append(books, cancelled(on=date(2026, 4, 1)))[0].appended
    assert_refusal(refused(books, changed(effective_date=date(2026, 5, 1))), "RULE_VIOLATED",
                   "effective_date")  # fmt: skip


def test_a_new_subscription_may_start_after_a_cancellation(books: Ledger) -> None:
    append(books, cancelled(on=date(2026, 6, 1)))
    assert append(books, subscription("s2", start_date=date(2026, 7, 1)))[0].appended


# Changes, pauses, resumes and cancellations are not dated before the subscription starts.


@pytest.mark.parametrize(
    "fact",
    [
        changed(effective_date=date(2025, 12, 31)),
        paused(on=date(2025, 12, 31)),
        cancelled(on=date(2025, 12, 31)),
    ],
)
def test_nothing_is_dated_before_the_subscription_starts(books: Ledger, fact: object) -> None:
    assert_refusal(refused(books, fact), "RULE_VIOLATED", "effective_date")


# Pause and resume alternate.


def test_a_paused_subscription_cannot_be_paused_again(books: Ledger) -> None:
    append(books, paused())
    assert_refusal(refused(books, paused(on=date(2026, 2, 15))), "RULE_VIOLATED",
                   "effective_date")  # fmt: skip


def test_a_subscription_that_is_not_paused_cannot_resume(books: Ledger) -> None:
    assert_refusal(refused(books, resumed()), "RULE_VIOLATED", "effective_date")


def test_a_resume_dated_before_its_pause_is_refused(books: Ledger) -> None:
    append(books, paused(on=date(2026, 3, 1)))
    assert_refusal(refused(books, resumed(on=date(2026, 2, 1))), "RULE_VIOLATED",
                   "effective_date")  # fmt: skip


def test_pauses_and_resumes_alternate_in_date_order(books: Ledger) -> None:
    append(books, paused(on=date(2026, 2, 1)), resumed(on=date(2026, 3, 1)))
    assert_refusal(refused(books, paused(on=date(2026, 2, 15))), "RULE_VIOLATED",
                   "effective_date")  # fmt: skip
    outcomes = append(books, paused(on=date(2026, 4, 1)), resumed(on=date(2026, 4, 1)))
    assert all(o.appended for o in outcomes)


# Invoices agree with their subscription.


def test_an_invoice_for_another_customers_subscription_is_refused(books: Ledger) -> None:
    append(books, customer("c2"))
    problem = refused(books, invoice("i2", customer_id="c2", subscription_id="s1"))
    assert_refusal(problem, "RULE_VIOLATED", "subscription_id")


def test_an_invoice_in_another_currency_than_its_subscription_is_refused(books: Ledger) -> None:
    problem = refused(books, invoice("i2", subscription_id="s1", currency="EUR"))
    assert_refusal(problem, "RULE_VIOLATED", "currency")


# Customers.


def test_a_public_customer_cannot_lose_its_ean(memory_ledger: Ledger) -> None:
    append(memory_ledger, customer(kind="public", ean="5798000416604"))
    problem = refused(memory_ledger, CustomerUpdated(customer_id="c1", ean=CLEARED))
    assert_refusal(problem, "RULE_VIOLATED", "ean")


def test_a_customer_cannot_become_public_without_an_ean(books: Ledger) -> None:
    problem = refused(books, CustomerUpdated(customer_id="c1", kind="public"))
    assert_refusal(problem, "RULE_VIOLATED", "ean")
    update = CustomerUpdated(customer_id="c1", kind="public", ean="5798000416604")
    assert append(books, update)[0].appended


@pytest.mark.parametrize(
    ("fact", "field"),
    [
        (CustomerUpdated(customer_id="c1", name="New name"), "customer_id"),
        (CustomerErased(customer_id="c1"), "customer_id"),
        (subscription("s2"), "customer_id"),
        (invoice("i2"), "customer_id"),
    ],
)
def test_an_erased_customer_gets_no_new_facts(books: Ledger, fact: object, field: str) -> None:
    append(books, CustomerErased(customer_id="c1"))
    assert_refusal(refused(books, fact), "RULE_VIOLATED", field)


def test_an_erased_customers_invoices_can_still_be_paid(books: Ledger) -> None:
    append(books, CustomerErased(customer_id="c1"))
    assert append(books, payment())[0].appended


# Periods.


def test_a_closed_period_cannot_be_closed_again(memory_ledger: Ledger) -> None:
    append(memory_ledger, closed("2026-01"))
    assert_refusal(refused(memory_ledger, closed("2026-01")), "RULE_VIOLATED", "period")


def test_a_period_that_is_not_closed_cannot_be_reopened(memory_ledger: Ledger) -> None:
    assert_refusal(refused(memory_ledger, reopened("2026-01")), "RULE_VIOLATED", "period")


def test_a_period_can_be_closed_reopened_and_closed_again(memory_ledger: Ledger) -> None:
    outcomes = append(memory_ledger, closed("2026-01"), reopened("2026-01"), closed("2026-01"))
    assert all(o.appended for o in outcomes)
