"""Canonical JSON text: compact, keys sorted — the form of an event's body hash and of its
stored answer.

`canonical(value)` is, byte for byte, `json.dumps(value, sort_keys=True, separators=(",",
":"), default=str)`: the standard library defines it. orjson writes the same text about ten
times faster, except in a few places, so it writes it first and the standard library writes
it again whenever orjson's text could differ:

- characters outside printable ASCII (json escapes them as \\uXXXX, orjson writes them as
  they are): the text is not ASCII, or holds DEL (0x7F);
- floats below 1e-4 (json writes 1e-05 and 1e-07, orjson 0.00001 and 1e-7): the text holds
  "0.0000", or an exponent of one digit after "e-". No other float is written otherwise
  (two million random ones checked, and the Hypothesis test below); a string that holds
  either pattern sends its value to json as well, which is slower, never different;
- what orjson refuses (integers beyond 64 bits, keys that are not strings): it raises.

Dates and times and dataclasses go to `default=str`, as in json (orjson would format them
itself). A float that is not finite (NaN, infinity) is the one case the check cannot see: json
writes NaN, orjson null. An event's body comes from `request.get_json()`, which takes NaN, so
such a body would hash differently than with json alone; no event carrying one gets past its
schema, so none is stored. `tests/test_jsontext.py` holds the two equal on random JSON values
(Hypothesis). `JSON_FAST_CANONICAL=0` in the environment writes everything with json.

Measured in-process on batches of 500 paid orders (`bench.profile batch`): the body hashes and
answers were 5 % of a batch request's time, json's encoder most of it.
"""

import json
import os
import re

import orjson

_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
_MAYBE_DIFFERENT = re.compile(rb"0\.0000|e-[0-9](?![0-9])|\x7f")
FAST = os.environ.get("JSON_FAST_CANONICAL", "1").strip().lower() not in ("0", "false", "no")


def canonical(value: object) -> str:
    """`json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)`."""
    if FAST:
        try:
            text = orjson.dumps(value, default=str, option=_OPTIONS)
        except TypeError:  # orjson.JSONEncodeError: what it does not write
            pass
        else:
            if text.isascii() and _MAYBE_DIFFERENT.search(text) is None:
                return text.decode()
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
