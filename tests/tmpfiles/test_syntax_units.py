"""Unit tests of the syntax pieces: words, escapes, time spans, fields, rendering."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from freshroot.tmpfiles import fields
from freshroot.tmpfiles.model import USEC_INFINITY
from freshroot.tmpfiles.render import escape_argument, escape_word
from freshroot.tmpfiles.timespan import TimespanError, format_timespan, parse_sec
from freshroot.tmpfiles.words import EscapeError, cunescape, extract_first_word, split_fields

_text = st.text(st.one_of(st.characters(codec="utf-8", exclude_characters="\0", exclude_categories=["Cs"]),
                          st.integers(0x80, 0xFF).map(lambda b: chr(0xDC00 + b))))


def _slow_split(line: str, count: int) -> tuple[list[str], str | None]:
    words: list[str] = []
    pos: int | None = 0
    while len(words) < count and pos is not None:
        word, pos = extract_first_word(line, pos)
        if word is None:
            break
        words.append(word)
    return words, (None if pos is None else line[pos:])


@settings(deadline=None)  # the CI machine is shared; time is not what is tested
@given(st.text(st.sampled_from(list("ab \t-/%~:"))))
def test_fast_split_equals_word_by_word(line: str) -> None:
    line = line.strip(" \t")
    assert split_fields(line, 6) == _slow_split(line, 6)


@settings(deadline=None)  # the CI machine is shared; time is not what is tested
@given(_text)
def test_escaped_word_reads_back(value: str) -> None:
    word, rest = extract_first_word(escape_word(value) + " next", 0)
    assert word == value
    assert rest is not None


@settings(deadline=None)  # the CI machine is shared; time is not what is tested
@given(_text.filter(lambda s: s not in ("", "-")))
def test_escaped_argument_reads_back(value: str) -> None:
    text = f"f /x - - - - {escape_argument(value, 'f')}".strip(" \t\n\r")
    _, rest = split_fields(text, 6)
    assert rest is not None
    assert cunescape(rest) == value


@pytest.mark.parametrize(("text", "word", "rest"), [
    ('a"b c"d e', "ab cd", "e"),
    ("'x\\ty' z", "x\ty", "z"),
    ("\\x41\\101\\u00e9 z", "AA\u00e9", "z"),
    ("\\xff", "\udcff", None),
    ("  lead", "lead", None),
])
def test_extract_first_word(text: str, word: str, rest: str | None) -> None:
    got, pos = extract_first_word(text, 0)
    assert got == word
    assert (None if pos is None else text[pos:]) == rest


@pytest.mark.parametrize("text", ['"open', "bad\\q", "nul\\x00", "nul\\000", "trail\\", "big\\400", "s\\ud800"])
def test_extract_first_word_refuses(text: str) -> None:
    with pytest.raises(EscapeError):
        extract_first_word(text, 0)


@pytest.mark.parametrize(("text", "usec"), [
    ("0", 0), ("5", 5_000_000), ("1d", 86_400_000_000), ("1h30min", 5_400_000_000), ("1.5h", 5_400_000_000),
    ("2 weeks", 1_209_600_000_000), ("1M", 2_629_800_000_000), ("1y", 31_557_600_000_000), ("10ms", 10_000),
    ("3us", 3), ("1s.5", 1_500_000), (".5", 500_000), ("+5", 5_000_000), ("infinity", USEC_INFINITY),
    (" 1m 1s ", 61_000_000), ("1\u00b5s", 1),
])
def test_parse_sec(text: str, usec: int) -> None:
    assert parse_sec(text) == usec


@pytest.mark.parametrize("text", ["", "x", "-1", "1.", "1x", "12.34.56", "3.sec", "infinityx", "1 d x",
                                  "99999999999999999999"])
def test_parse_sec_refuses(text: str) -> None:
    with pytest.raises(TimespanError):
        parse_sec(text)


@settings(deadline=None)  # the CI machine is shared; time is not what is tested
@given(st.integers(0, 1 << 60))
def test_format_timespan_reads_back(usec: int) -> None:
    assert parse_sec(format_timespan(usec)) == usec


@pytest.mark.parametrize(("text", "mode"), [("0755", 0o755), ("7777", 0o7777), ("0", 0), (" 644", 0o644),
                                            ("10000", None), ("0888", None), ("+7", None), ("", None)])
def test_parse_mode(text: str, mode: int | None) -> None:
    assert fields.parse_mode(text) == mode


@settings(deadline=None)  # the CI machine is shared; time is not what is tested
@given(st.binary(max_size=64))
def test_unbase64_reads_both_alphabets(data: bytes) -> None:
    assert fields.unbase64(base64.b64encode(data)) == data
    assert fields.unbase64(base64.urlsafe_b64encode(data)) == data
    assert fields.unbase64(b" \n".join(base64.b64encode(data)[i:i + 3] for i in range(0, 100, 3))) == data


@pytest.mark.parametrize(("text", "error"), [(b"+i", "Broken pipe"), (b"!!!!", "Invalid argument"),
                                             (b"YQ==x", "File name too long"), (b"YR==", "Invalid argument"),
                                             (b"=QQQ", "Invalid argument")])
def test_unbase64_errors(text: bytes, error: str) -> None:
    with pytest.raises(fields.Base64Error, match=error):
        fields.unbase64(text)


@pytest.mark.parametrize(("path", "prefix", "rest"), [
    ("/var/run/x", "/var/run", "x"), ("/var//run//x/", "/var/run", "x/"), ("/var/run", "/var/run", ""),
    ("/var/runx", "/var/run", None), ("/var", "/var/run", None),
])
def test_path_remainder(path: str, prefix: str, rest: str | None) -> None:
    assert fields.path_remainder(path, prefix) == rest
