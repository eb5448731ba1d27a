"""Time spans as systemd's parse_sec() reads them ("1h 30min", "2.5d", "infinity"), in µs."""

from __future__ import annotations

from freshroot.tmpfiles.model import USEC_INFINITY

_SEC = 1_000_000
_MIN = 60 * _SEC
_HOUR = 60 * _MIN
_DAY = 24 * _HOUR
_WEEK = 7 * _DAY
_MONTH = 2_629_800 * _SEC
_YEAR = 31_557_600 * _SEC
_LLONG_MAX = (1 << 63) - 1

# Order matters: the first suffix that the text starts with wins (so "ms" before "m").
_UNITS: tuple[tuple[str, int], ...] = (
    ("seconds", _SEC), ("second", _SEC), ("sec", _SEC), ("s", _SEC),
    ("minutes", _MIN), ("minute", _MIN), ("min", _MIN),
    ("months", _MONTH), ("month", _MONTH), ("M", _MONTH),
    ("msec", 1000), ("ms", 1000), ("m", _MIN),
    ("hours", _HOUR), ("hour", _HOUR), ("hr", _HOUR), ("h", _HOUR),
    ("days", _DAY), ("day", _DAY), ("d", _DAY),
    ("weeks", _WEEK), ("week", _WEEK), ("w", _WEEK),
    ("years", _YEAR), ("year", _YEAR), ("y", _YEAR),
    ("usec", 1), ("us", 1), ("\u03bcs", 1), ("\u00b5s", 1),
)
_WS = " \t\n\r"
_DIGITS = "0123456789"


class TimespanError(ValueError):
    pass


def _skip(s: str, i: int, chars: str) -> int:
    while i < len(s) and s[i] in chars:
        i += 1
    return i


def parse_sec(text: str) -> int:
    """Microseconds for ``text``, or USEC_INFINITY; raises TimespanError as systemd fails."""
    p = _skip(text, 0, _WS)
    if text.startswith("infinity", p):
        if text[p + 8:].strip(_WS):
            raise TimespanError(text)
        return USEC_INFINITY
    total = 0
    something = False
    while True:
        p = _skip(text, p, _WS)
        if p >= len(text):
            if not something:
                raise TimespanError(text)
            return total
        if text[p] == "-":
            raise TimespanError(text)
        # strtoll: an optional '+', then decimal digits.
        q = p + 1 if text[p] == "+" else p
        e = _skip(text, q, _DIGITS)
        if e == q:
            e = p  # no conversion: strtoll leaves the end at the start
            value = 0
        else:
            value = int(text[q:e])
            if value > _LLONG_MAX:
                raise TimespanError(text)
        dot = e < len(text) and text[e] == "."
        if dot:
            p = _skip(text, e + 1, _DIGITS)
        elif e == p:
            raise TimespanError(text)
        else:
            p = e
        u = _skip(text, p, _WS)
        multiplier = _SEC
        s = u
        for suffix, usec in _UNITS:
            if text.startswith(suffix, u):
                multiplier = usec
                s = u + len(suffix)
                break
        if s == p and s < len(text):
            raise TimespanError(text)  # "12.34.56"
        p = s
        if value >= USEC_INFINITY // multiplier:
            raise TimespanError(text)
        k = value * multiplier
        if k >= USEC_INFINITY - total:
            raise TimespanError(text)
        total += k
        something = True
        if dot:
            m = multiplier // 10
            b = e + 1
            while b < len(text) and text[b] in _DIGITS:
                k = int(text[b]) * m
                if k >= USEC_INFINITY - total:
                    raise TimespanError(text)
                total += k
                b += 1
                m //= 10
            if b == e + 1:
                raise TimespanError(text)  # "3." or "3.sec"


def format_timespan(usec: int) -> str:
    """A compact form that parse_sec() reads back to the same value."""
    if usec == USEC_INFINITY:
        return "infinity"
    if usec == 0:
        return "0"
    for suffix, unit in (("w", _WEEK), ("d", _DAY), ("h", _HOUR), ("min", _MIN), ("s", _SEC), ("ms", 1000)):
        if usec % unit == 0:
            return f"{usec // unit}{suffix}"
    return f"{usec}us"
