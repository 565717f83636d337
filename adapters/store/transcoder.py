"""An orjson-based transcoder for stored events.

It keeps the library's registry of transcodings (`{"_type_": name, "_data_": ...}` tags, so the
stored format is the same as the library's JSON transcoder's) but encodes and decodes with orjson.
Arrays decode as tuples: the domain's events and value objects hold tuples only.

orjson writes `UUID`s as plain strings without asking, so a UUID inside an event's state would not
come back as a UUID; the ledger's events carry none (aggregate ids are stored in their own column).
"""

from __future__ import annotations

from typing import Any

import orjson
from eventsourcing.persistence import JSONTranscoder, TranscodingNotRegisteredError

_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


class OrjsonTranscoder(JSONTranscoder):
    def encode(self, obj: Any) -> bytes:
        try:
            return orjson.dumps(obj, default=self._encode_obj, option=_OPTIONS)
        except orjson.JSONEncodeError as error:
            cause = error.__cause__
            if isinstance(cause, TranscodingNotRegisteredError):
                raise cause from None
            raise

    def decode(self, data: bytes) -> Any:
        return self._revive(orjson.loads(data))

    def _revive(self, value: Any) -> Any:
        kind = type(value)
        if kind is dict:
            if len(value) == 2 and "_type_" in value:
                try:
                    transcoding = self.names[value["_type_"]]
                except KeyError as error:
                    raise TranscodingNotRegisteredError(
                        f"no transcoding registered for {value['_type_']!r}"
                    ) from error
                return transcoding.decode(self._revive(value["_data_"]))
            for key, item in value.items():
                item_kind = type(item)
                if item_kind is dict or item_kind is list:
                    value[key] = self._revive(item)
            return value
        if kind is list:
            return tuple(self._revive(item) for item in value)
        return value
