"""How every process logs: to standard error, a line per record, as text (`INFO message`, the
default) or, with `SUBLEDGER_LOG_FORMAT=json`, as one JSON object per line for a log collector
(docs/operating.md).

A JSON line holds the record's time (ISO 8601, UTC), level, logger and message, and the access
lines of `subledger serve` (logger `subledger.access`, api/http/access_log.py) the request's
fields besides. Nothing else of a record goes out: not its arguments, not what a library put in
`extra`, so that what a line says is what this module lets through.
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime
from typing import Any, Final, Literal

import orjson

#: The environment variable that chooses the format, and its values (the first the default).
FORMAT_VARIABLE: Final = "SUBLEDGER_LOG_FORMAT"
FORMATS: Final = ("text", "json")
TEXT_FORMAT: Final = "%(levelname)s %(message)s"

#: The logger of the line per HTTP request; it logs only in the JSON format (in the text format
#: uvicorn's own access log says the same).
ACCESS_LOGGER: Final = "subledger.access"
#: The fields an access line adds to a JSON line, taken from the record's `extra`.
ACCESS_FIELDS: Final = ("request_id", "method", "route", "status", "duration_ms")

#: Above CRITICAL: a logger at this level logs nothing.
_OFF: Final = logging.CRITICAL + 1


class LogFormatError(ValueError):
    """`SUBLEDGER_LOG_FORMAT` names no format."""


def log_format() -> Literal["text", "json"]:
    """The format `SUBLEDGER_LOG_FORMAT` asks for (`text` when unset)."""
    value = os.environ.get(FORMAT_VARIABLE, "").strip().lower() or "text"
    if value == "text":
        return "text"
    if value == "json":
        return "json"
    raise LogFormatError(f"{FORMAT_VARIABLE} must be one of {', '.join(FORMATS)}, not {value!r}")


class JsonFormatter(logging.Formatter):
    """A record as one JSON object on one line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in ACCESS_FIELDS:
            if name in record.__dict__:
                line[name] = record.__dict__[name]
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return orjson.dumps(line, default=str).decode()


def _handler(chosen: str) -> logging.Handler:
    """A handler to standard error in the `chosen` format, marked as this module's."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if chosen == "json" else logging.Formatter(TEXT_FORMAT))
    handler._subledger = True  # type: ignore[attr-defined]
    return handler


def json_handler() -> logging.Handler:
    """The JSON handler, for `logging.config.dictConfig` (uvicorn's `log_config`)."""
    return _handler("json")


def configure_logging(level: str) -> None:
    """Log at `level` (`info`, ...) to standard error in the chosen format. A process whose root
    logger has handlers of someone else's (a test runner's) keeps them, as `basicConfig` would;
    a second call changes the level and format of the handler the first one installed."""
    chosen = log_format()
    root = logging.getLogger()
    ours = [h for h in root.handlers if getattr(h, "_subledger", False)]
    if ours or not root.handlers:
        for handler in ours:
            root.removeHandler(handler)
        root.addHandler(_handler(chosen))
        root.setLevel(level.upper())
    logging.getLogger(ACCESS_LOGGER).setLevel(logging.NOTSET if chosen == "json" else _OFF)


def uvicorn_log_config(level: str) -> dict[str, Any]:
    """uvicorn's `log_config` in the JSON format: every logger, uvicorn's included, through one
    JSON handler on standard error (each worker process of `serve --workers N` applies it
    too). uvicorn's access log is turned off (`access_log=False`): the app's says more."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {"stderr": {"()": json_handler}},
        "root": {"handlers": ["stderr"], "level": level.upper()},
        "loggers": {
            "uvicorn": {"handlers": [], "propagate": True},
            "uvicorn.error": {"handlers": [], "propagate": True},
            "uvicorn.access": {"handlers": [], "propagate": False},
            ACCESS_LOGGER: {"level": "NOTSET"},
        },
    }


def uvicorn_logging(level: str) -> dict[str, Any]:
    """The logging arguments of `uvicorn.run` in the chosen format: none in the text format
    (uvicorn's own, its access log included), else `uvicorn_log_config` without uvicorn's
    access log."""
    if log_format() == "text":
        return {}
    return {"log_config": uvicorn_log_config(level), "access_log": False}
