"""Lists: paging, `queryFilter`, the filters every list takes, sorting and `fields`."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final, TypeVar

from subledger.adapters.sandbox.dinero.envelope import Answer, Call, Query, invalid
from subledger.adapters.sandbox.dinero.state import instant, parse_instant
from subledger.adapters.sandbox.fields import Money, Record, query_text

T = TypeVar("T")

DEFAULT_PAGE_SIZE: Final = 100
MAX_PAGE_SIZE: Final = 1000

SORT_ORDERS: Final = {"ascending": False, "asc": False, "descending": True, "desc": True}

Test = Callable[[Record], bool]

#: The fields `queryFilter` may name on a list, each with the operators it takes (each list's
#: own is beside it: `contacts.CONTACT_FILTERS`, `documents.DOCUMENT_FILTERS` and
#: `products.PRODUCT_FILTERS`).
Filterable = Mapping[str, tuple[str, ...]]

CLAUSE: Final = re.compile(
    r"\s*(?P<field>[A-Za-z]+)\s+(?P<op>[A-Za-z]+)\s+(?P<value>'(?:[^']|'')*'|[^\s']+)\s*"
)
JOINER: Final = re.compile(r"and\s+", re.IGNORECASE)


def _query_filter(text: str, allowed: Filterable) -> list[Test]:
    """`queryFilter`: clauses `Field eq 'value'` or `Field contains 'value'` joined by `and`,
    compared without regard to case (a quote inside a value is doubled: `'O''Brien'`); each
    field only with the operators `allowed` gives it."""
    spelled = {name.lower(): name for name in allowed}
    tests: list[Test] = []
    position = 0
    while True:
        clause = CLAUSE.match(text, position)
        if clause is None:
            raise ValueError(f"cannot read {text[position:]!r}: use Field eq 'value'")
        name = spelled.get(clause["field"].lower())
        if name is None:
            raise ValueError(f"{clause['field']} cannot be filtered on ({_filterable(allowed)})")
        op = clause["op"].lower()
        if op not in allowed[name]:
            raise ValueError(f"{name} takes {' or '.join(allowed[name])}, not {clause['op']}")
        value = clause["value"]
        if value.startswith("'"):
            value = value[1:-1].replace("''", "'")
        tests.append(_clause_test(name, op, value.casefold()))
        position = clause.end()
        if position == len(text):
            return tests
        joiner = JOINER.match(text, position)
        if joiner is None:
            raise ValueError(f"expected 'and' at {text[position:]!r}")
        position = joiner.end()


def _filterable(allowed: Filterable) -> str:
    if not allowed:
        return "this list takes no queryFilter"
    fields = ", ".join(f"{name} {'/'.join(ops)}" for name, ops in allowed.items())
    return f"only {fields}"


def _clause_test(name: str, op: str, wanted: str) -> Test:
    if op == "eq":
        return lambda record: query_text(record.get(name)).casefold() == wanted
    return lambda record: wanted in query_text(record.get(name)).casefold()


def _paging(query: Query) -> tuple[int, int]:
    page = _whole(query, "page", default=0, minimum=0)
    size = _whole(query, "pageSize", default=DEFAULT_PAGE_SIZE, minimum=1)
    if size > MAX_PAGE_SIZE:
        raise invalid({"pageSize": f"must be at most {MAX_PAGE_SIZE}"})
    return page, size


def _whole(query: Query, name: str, *, default: int, minimum: int) -> int:
    text = query.get(name)
    if text is None:
        return default
    if not text.isdigit() or int(text) < minimum:
        raise invalid({name: f"must be a whole number from {minimum}"})
    return int(text)


def _common_tests(query: Query, filterable: Filterable, with_deleted: bool) -> list[Test]:
    """`changesSince`, `deletedOnly` and `queryFilter`, which every list takes."""
    tests: list[Test] = []
    since = checked(query, "changesSince", parse_instant)
    if since is not None:
        bound = instant(since.replace(microsecond=0))
        tests.append(lambda record: str(record["UpdatedAt"]) >= bound)
    if checked(query, "deletedOnly", true_or_false):
        tests.append(lambda record: record["DeletedAt"] is not None)
    elif not with_deleted:
        tests.append(lambda record: record["DeletedAt"] is None)
    tests.extend(checked(query, "queryFilter", lambda text: _query_filter(text, filterable)) or [])
    return tests


def checked(query: Query, name: str, read: Callable[[str], T]) -> T | None:
    """A query parameter read by `read`, None when it is absent; 400 naming it when it is bad."""
    text = query.get(name)
    if text is None:
        return None
    try:
        return read(text)
    except ValueError as error:
        raise invalid({name: str(error)}) from None


def true_or_false(text: str) -> bool:
    if text.lower() not in ("true", "false"):
        raise ValueError("must be true or false")
    return text.lower() == "true"


def list_page(
    call: Call,
    records: list[Record],
    filterable: Filterable,
    *,
    with_deleted: bool = False,
    more: Sequence[Test] = (),
    sortable: bool = False,
) -> Answer:
    """One page (from 0) of the records that pass every test, in creation order unless sorted,
    in Dinero's `{Collection, Pagination}`; `Result` counts the records on the page and
    `ResultWithoutFilter` every record of the list (deleted ones aside)."""
    page, size = _paging(call.query)
    tests = [*_common_tests(call.query, filterable, with_deleted), *more]
    chosen = [record for record in records if all(test(record) for test in tests)]
    if sortable:
        chosen = _sorted(chosen, call.query)
    shown = chosen[page * size : (page + 1) * size]
    pagination = {
        "MaxPageSizeAllowed": MAX_PAGE_SIZE,
        "PageSize": size,
        "Result": len(shown),
        "ResultWithoutFilter": sum(1 for record in records if record["DeletedAt"] is None),
        "Page": page,
    }
    return Answer(
        {"Collection": project_fields(shown, call.query.get("fields")), "Pagination": pagination}
    )


def _sorted(records: list[Record], query: Query) -> list[Record]:
    """`sort` (a field of the records, any case) and `sortOrder` (ascending or descending)."""
    name = query.get("sort")
    order = (query.get("sortOrder") or "ascending").lower()
    if order not in SORT_ORDERS:
        raise invalid({"sortOrder": "must be ascending or descending"})
    if name is None:
        return records[::-1] if SORT_ORDERS[order] else records
    keys = {key.lower(): key for record in records[:1] for key in record}
    key = keys.get(name.lower())
    if key is None and records:
        raise invalid({"sort": f"{name} is no field of the list"})

    def order_key(record: Record) -> tuple[bool, Any]:
        value = record.get(key or "")
        if isinstance(value, Money):
            value = value.minor
        return value is not None, value if value is not None else 0

    return sorted(records, key=order_key, reverse=SORT_ORDERS[order])


def project_fields(records: Iterable[Record], fields: str | None) -> list[Record]:
    """`fields`: each record cut to the fields named, under the names as the caller spelled
    them (`fields=guid,Number` answers `guid` and `Number`); unknown names are left out."""
    if fields is None:
        return list(records)
    names = [name.strip() for name in fields.split(",") if name.strip()]
    projected = []
    for record in records:
        by_lower = {key.lower(): key for key in record}
        projected.append(
            {name: record[by_lower[name.lower()]] for name in names if name.lower() in by_lower}
        )
    return projected
