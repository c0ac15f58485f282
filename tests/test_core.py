"""The I/O-free core, tested as h11 tests its state machine: plain functions, no event loop.

Address ordering, targets and argument checks here; errors, attempts, reports and reply
assembly in test_core_reports.py.
"""

from __future__ import annotations

import array
import itertools
import math
import socket
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trio_sockets._addresses import (
    AddrInfo,
    format_address,
    numeric_addrinfo,
    reorder_for_rfc_8305_section_4,
)
from trio_sockets._checks import (
    DEFAULT_DELAY,
    Options,
    check_callback,
    check_count,
    check_local_address,
    check_payload,
    check_seconds,
)
from trio_sockets._errors import TargetError
from trio_sockets._targets import Target, parse_targets

pytestmark = pytest.mark.timeout(30)

V4, V6 = socket.AF_INET, socket.AF_INET6


def info4(n: int) -> AddrInfo:
    return (V4, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (f"192.0.2.{n}", 80))


def info6(n: int) -> AddrInfo:
    return (V6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (f"2001:db8::{n}", 80, 0, 0))


# --------------------------------------------------------------------------------------
# Address ordering (RFC 8305 section 4)
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        pytest.param([], [], id="empty"),
        pytest.param([info4(1)], [info4(1)], id="one"),
        pytest.param([info4(1), info4(2), info4(3)], [info4(1), info4(2), info4(3)], id="v4-only"),
        pytest.param([info6(3), info6(1), info6(2)], [info6(3), info6(1), info6(2)], id="v6-only"),
        pytest.param(
            [info6(1), info6(2), info4(1), info4(2)],
            [info6(1), info4(1), info6(2), info4(2)],
            id="v6-first",
        ),
        pytest.param(
            [info4(1), info4(2), info6(1), info6(2)],
            [info4(1), info6(1), info4(2), info6(2)],
            id="v4-first",
        ),
        pytest.param(
            # The docstring's example: A1 A2 B1 B2 B3 becomes A1 B1 A2 B2 B3.
            [info4(1), info4(2), info6(1), info6(2), info6(3)],
            [info4(1), info6(1), info4(2), info6(2), info6(3)],
            id="uneven",
        ),
        pytest.param(
            [info6(1), info4(1), info4(2), info4(3)],
            [info6(1), info4(1), info4(2), info4(3)],
            id="one-v6-then-v4s",
        ),
        pytest.param(
            [info4(1), info6(1), info4(2), info6(2)],
            [info4(1), info6(1), info4(2), info6(2)],
            id="already-interleaved",
        ),
        pytest.param(
            # Resolver order within a family is kept, not sorted.
            [info6(9), info4(7), info6(2), info4(1)],
            [info6(9), info4(7), info6(2), info4(1)],
            id="resolver-order-kept",
        ),
        pytest.param(
            [info6(9), info6(2), info4(7), info6(5), info4(1)],
            [info6(9), info4(7), info6(2), info4(1), info6(5)],
            id="mixed",
        ),
    ],
)
def test_reorder_for_rfc_8305_section_4(given: list[AddrInfo], expected: list[AddrInfo]) -> None:
    original = list(given)
    assert reorder_for_rfc_8305_section_4(given) == expected
    assert given == original  # the input is not modified
    assert reorder_for_rfc_8305_section_4(iter(given)) == expected  # any iterable


@given(st.lists(st.tuples(st.sampled_from([V4, V6]), st.integers(0, 255)), max_size=20))
def test_reorder_is_a_permutation_that_alternates(pairs: list[tuple[int, int]]) -> None:
    infos = [info4(n) if family == V4 else info6(n) for family, n in pairs]
    ordered = reorder_for_rfc_8305_section_4(infos)
    assert sorted(ordered) == sorted(infos)
    for family in (V4, V6):  # resolver order within each family
        assert [i for i in ordered if i[0] == family] == [i for i in infos if i[0] == family]
    if infos:
        assert ordered[0] == infos[0]
        # Families alternate until the shorter one runs out.
        shorter = min(sum(i[0] == V4 for i in infos), sum(i[0] == V6 for i in infos))
        head = [i[0] for i in ordered[: 2 * shorter]]
        assert all(a != b for a, b in itertools.pairwise(head))


def test_numeric_addrinfo() -> None:
    v4 = numeric_addrinfo("192.0.2.1", 80)
    assert v4 is not None
    assert [(i[0], i[1], i[4]) for i in v4] == [(V4, socket.SOCK_STREAM, ("192.0.2.1", 80))]
    v6 = numeric_addrinfo("2001:db8::1", 443)
    assert v6 is not None
    assert [(i[0], i[4]) for i in v6] == [(V6, ("2001:db8::1", 443, 0, 0))]
    assert numeric_addrinfo("example.test", 80) is None
    assert numeric_addrinfo("1.2.3", 80) is None  # inet_aton would take it; we do not


@pytest.mark.parametrize("host", ["192.0.2.1%x", "::1%", "fe80::1%no-such-interface0"])
def test_numeric_addrinfo_leaves_unparseable_literals_to_the_resolver(host: str) -> None:
    # ipaddress accepts these, the C library does not: before the fix, the gaierror
    # escaped open_connection raw instead of as a ConnectError from the resolve step.
    assert numeric_addrinfo(host, 80) is None


@pytest.mark.parametrize(
    ("sockaddr", "text"),
    [
        (("192.0.2.1", 80), "192.0.2.1:80"),
        (("2001:db8::1", 443, 0, 0), "[2001:db8::1]:443"),
        (("::1", 1), "[::1]:1"),
        (("127.0.0.1", 80), "127.0.0.1:80"),
        (("::1", 50089, 0, 0), "[::1]:50089"),
        (("fe80::1%lo", 80, 0, 1), "[fe80::1%lo]:80"),
        (["::1", 50089, 0, 0], "[::1]:50089"),  # a sockaddr read back from JSON
    ],
)
def test_format_address(sockaddr: tuple[Any, ...], text: str) -> None:
    assert format_address(sockaddr) == text


def test_a_target_is_written_by_format_address() -> None:
    assert str(Target("::1", 50089)) == format_address(("::1", 50089)) == "[::1]:50089"
    assert str(Target("127.0.0.1", 80)) == format_address(("127.0.0.1", 80)) == "127.0.0.1:80"


# --------------------------------------------------------------------------------------
# Targets
# --------------------------------------------------------------------------------------


PARSE_OK: list[tuple[object, Target]] = [
    (Target("example.test", 80), Target("example.test", 80)),
    ("example.test:80", Target("example.test", 80)),
    ("EXAMPLE.test:65535", Target("EXAMPLE.test", 65535)),
    ("localhost:1", Target("localhost", 1)),
    ("192.0.2.1:8080", Target("192.0.2.1", 8080)),
    ("[2001:db8::1]:443", Target("2001:db8::1", 443)),
    ("[::1]:80", Target("::1", 80)),
    ("[::ffff:192.0.2.1]:80", Target("::ffff:192.0.2.1", 80)),
    ("[fe80::1%eth0]:80", Target("fe80::1%eth0", 80)),
    ("bücher.example:80", Target("bücher.example", 80)),
    ("example.test:0080", Target("example.test", 80)),
    (("example.test", 80), Target("example.test", 80)),
    (("example.test", "80"), Target("example.test", 80)),
    (("192.0.2.1", 1), Target("192.0.2.1", 1)),
    (("2001:db8::1", 443), Target("2001:db8::1", 443)),
    (("[2001:db8::1]", 443), Target("2001:db8::1", 443)),
]


@pytest.mark.parametrize(("value", "expected"), PARSE_OK, ids=repr)
def test_parse_accepts(value: object, expected: Target) -> None:
    parsed = Target.parse(value)
    assert parsed == expected
    assert type(parsed.port) is int
    assert Target.parse(str(parsed)) == parsed


def test_parse_returns_a_target_unchanged() -> None:
    target = Target("example.test", 80)
    assert Target.parse(target) is target


# (value, a fragment the message must contain: it names the offending value)
PARSE_ERRORS: list[tuple[object, str]] = [
    # a URL, not a target
    (
        "http://localhost:18080",
        "'http://localhost:18080' is a URL; give host:port, such as 'localhost:18080'",
    ),
    ("https://[::1]:8443/x?y", "is a URL; give host:port, such as '[::1]:8443'"),
    ("http://example.test/", "'http://example.test/' is a URL; give host:port"),
    # no port
    ("example.test", "no port in target 'example.test'"),
    ("[2001:db8::1]", "no port in target '[2001:db8::1]'"),
    ("[2001:db8::1]80", "no port"),
    ("", "no port in target ''"),
    # not an integer in 1..65535
    ("example.test:", "got '' in 'example.test:'"),
    ("example.test:http", "got 'http'"),
    (("example.test", "http"), "got 'http'"),
    ("example.test:8o", "got '8o'"),
    ("example.test:-1", "got '-1'"),
    ("example.test:+80", "got '+80'"),
    ("example.test: 80", "got ' 80'"),
    ("example.test:80 ", "got '80 '"),
    ("example.test:٨٠", "got '٨٠'"),  # Arabic-Indic digits: isdigit() but not a port
    ("example.test:²", "got '²'"),
    ("example.test:0", "got 0"),
    ("example.test:65536", "got 65536"),
    (("example.test", 0), "got 0"),
    (("example.test", 65536), "got 65536"),
    (("example.test", -80), "got -80"),
    (("example.test", 80.0), "got 80.0"),
    (("example.test", None), "got None"),
    (("example.test", True), "got True"),
    (("example.test", False), "got False"),
    (("example.test", b"80"), "got b'80'"),
    # empty host
    (":80", "empty host in target ':80'"),
    ("[]:80", "'' in '[]:80' is not an IPv6 literal"),
    (("", 80), "empty host in target ('', 80)"),
    (("[]", 80), "empty host"),
    # whitespace or control characters
    ("exa mple.test:80", "'exa mple.test' contains whitespace"),
    (" example.test:80", "' example.test' contains whitespace"),
    ("example.test\n:80", "contains whitespace or control"),
    ("exa\tmple:80", "contains whitespace or control"),
    ("exa\x00mple:80", "contains whitespace or control"),
    ("exa\x7fmple:80", "contains whitespace or control"),
    ("exa\u200bmple:80", "contains whitespace or control"),  # zero-width space
    (("exa mple", 80), "contains whitespace"),
    # a host that is not a string
    ((None, 80), "host must be a string, got None in target (None, 80)"),
    ((b"example.test", 80), "got b'example.test'"),
    ((80, 80), "host must be a string, got 80"),
    # unbracketed IPv6 with a port
    ("2001:db8::1:80", "IPv6 literal must be in brackets, as '[2001:db8::1]:80'"),
    ("::1:80", "must be in brackets"),
    # malformed brackets
    ("[2001:db8::1:80", "missing ']'"),
    ("[example.test]:80", "'example.test' in '[example.test]:80' is not an IPv6 literal"),
    ("[192.0.2.1]:80", "is not an IPv6 literal"),
    # hosts str(Target) could not write back (see _check_host)
    (("a:b", 80), "'a:b' contains ':' but is not an IPv6 literal"),
    (("[x", 80), "'[x' contains '[' or ']'"),
    ("x]:80", "'x]' contains '[' or ']'"),
    # names DNS never accepts: empty labels, labels over 63 octets, names over 253
    ("a..b:80", "host 'a..b' is not a valid host name: an empty label in target 'a..b:80'"),
    (".example.test:80", "an empty label"),
    ("example.test..:80", "an empty label"),
    (("a..b", 80), "'a..b' is not a valid host name: an empty label"),
    ("a" * 64 + ".test:80", "a label of 64 octets, more than 63"),
    (".".join(["a" * 63] * 4) + ":80", "255 octets, more than 253"),
    ("ü" * 60 + ".test:80", "is not a valid host name"),  # too long once IDNA-encoded
    ("x" * 56 + "ü.test:80", "is not a valid host name"),  # 57 characters, 64 octets
    (".".join(["ü"] * 32) + ":80", "255 octets, more than 253"),  # 63 characters
    # not a target at all
    (None, "got None"),
    (80, "got 80"),
    (b"example.test:80", "got b'example.test:80'"),
    (["example.test", 80], "got ['example.test', 80]"),
    (("example.test",), "must be (host, port), got ('example.test',)"),
    (("example.test", 80, 0), "must be (host, port)"),
    ({"host": "example.test", "port": 80}, "got {"),
]


@pytest.mark.parametrize(
    "host",
    [
        "a" * 63 + ".test",  # the longest label
        ".".join(["a" * 63] * 3 + ["a" * 61]),  # the longest name: 253 octets
        ".".join(["a" * 63] * 3 + ["a" * 61]) + ".",  # and its root dot
        "example.test.",
        "bücher.example",
        "☃.net",  # IDNA 2003 encodes it; Trio's IDNA 2008 resolver refuses it later
    ],
)
def test_parse_accepts_the_longest_names_dns_takes(host: str) -> None:
    assert Target.parse((host, 80)).host == host


@pytest.mark.parametrize(("value", "fragment"), PARSE_ERRORS, ids=repr)
def test_parse_refuses(value: object, fragment: str) -> None:
    with pytest.raises(TargetError) as info:
        Target.parse(value)
    assert fragment in str(info.value)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("host", "port"),
    [
        ("", 80),
        ("a b", 80),
        ("x", 0),
        ("x", 65536),
        ("x", True),
        ("x", "80"),
        (None, 80),
        ("a..b", 80),
        ("a" * 64, 80),
    ],
)
def test_target_constructor_checks_too(host: Any, port: Any) -> None:
    with pytest.raises(TargetError) as info:
        Target(host, port)
    assert f"in Target(host={host!r}, port={port!r})" in str(info.value)


def test_target_is_frozen_and_hashable() -> None:
    target = Target("example.test", 80)
    with pytest.raises(AttributeError):
        target.port = 81  # type: ignore[misc]
    assert {target, Target("example.test", 80)} == {target}


@pytest.mark.parametrize(
    ("target", "text"),
    [
        (Target("example.test", 80), "example.test:80"),
        (Target("192.0.2.1", 1), "192.0.2.1:1"),
        (Target("2001:db8::1", 443), "[2001:db8::1]:443"),
        (Target("fe80::1%eth0", 8), "[fe80::1%eth0]:8"),
    ],
)
def test_target_str(target: Target, text: str) -> None:
    assert str(target) == text


def test_parse_targets() -> None:
    assert parse_targets(["a.test:1", ("b.test", 2), Target("c.test", 3)]) == [
        Target("a.test", 1),
        Target("b.test", 2),
        Target("c.test", 3),
    ]
    assert parse_targets(iter(["a.test:1"])) == [Target("a.test", 1)]
    assert parse_targets([]) == []
    with pytest.raises(TargetError, match=r"^targets\[1\]: no port in target 'bad'"):
        parse_targets(["a.test:1", "bad", "also bad"])


@pytest.mark.parametrize("single", ["a.test:1", b"a.test:1", Target("a.test", 1)], ids=repr)
def test_parse_targets_refuses_a_single_target(single: object) -> None:
    # A string is iterable: without this check each character would be a "target".
    with pytest.raises(TargetError, match="must be a list of targets"):
        parse_targets(single)


# ----- property-based ------------------------------------------------------------------

hosts = st.one_of(
    st.text(max_size=30),
    st.from_regex(r"[a-z0-9-]{1,20}(\.[a-z0-9-]{1,20}){0,3}", fullmatch=True),
    st.ip_addresses().map(str),
    st.sampled_from(["[::1]", "[", "]", "::", "a:b", "%", "fe80::1%eth0", "xn--", ".."]),
)
ports = st.one_of(
    st.integers(-(2**70), 2**70),
    st.integers(0, 70000),
    st.integers(0, 70000).map(str),
    st.text(max_size=8),
    st.booleans(),
    st.none(),
    st.floats(),
    st.binary(max_size=4),
)
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(), st.binary(), hosts
)
anything = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.lists(inner, max_size=3).map(tuple),
        st.dictionaries(st.text(max_size=3), inner, max_size=2),
    ),
    max_leaves=8,
)
target_like = st.one_of(
    anything,
    st.tuples(hosts, ports),
    st.tuples(anything, anything),
    st.builds(lambda h, p: f"{h}:{p}", hosts, ports),
    st.builds(lambda h, p: f"[{h}]:{p}", hosts, ports),
    st.builds(lambda h, p: f"{h}:{p}", st.text(), st.text()),
)


@given(target_like)
def test_parse_anything_either_parses_or_raises_target_error(value: object) -> None:
    try:
        parsed = Target.parse(value)
    except TargetError as exc:
        assert str(exc)  # never an empty message
        return
    assert isinstance(parsed, Target)
    assert isinstance(parsed.host, str) and parsed.host
    assert type(parsed.port) is int and 1 <= parsed.port <= 65535
    # A parsed target round-trips through its text and through a tuple.
    assert Target.parse(str(parsed)) == parsed
    assert Target.parse((parsed.host, parsed.port)) == parsed


@given(st.tuples(hosts, st.integers(1, 65535)))
def test_valid_tuples_round_trip(value: tuple[str, int]) -> None:
    try:
        parsed = Target.parse(value)
    except TargetError:
        return
    assert parsed.port == value[1]
    assert Target.parse(str(parsed)) == parsed


@given(st.from_regex(r"[a-z][a-z0-9-]{0,20}(\.[a-z0-9-]{1,20}){0,3}", fullmatch=True))
def test_every_plain_host_name_parses(host: str) -> None:
    assert Target.parse(f"{host}:443") == Target(host, 443)


@given(st.ip_addresses(v=6))
def test_every_ipv6_literal_parses_in_brackets(address: Any) -> None:
    assert Target.parse(f"[{address}]:80") == Target(str(address), 80)
    with pytest.raises(TargetError, match="brackets"):
        Target.parse(f"{address}:80")


# --------------------------------------------------------------------------------------
# Argument checks
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"), [(0, 0.0), (1, 1.0), (0.25, 0.25), (math.inf, math.inf), (None, None)]
)
def test_check_seconds_accepts(value: object, expected: float | None) -> None:
    result = check_seconds(value, "timeout")
    assert result == expected
    if result is not None:
        assert type(result) is float


@pytest.mark.parametrize(
    ("value", "error", "match"),
    [
        (-1, ValueError, r"^timeout must be a non-negative number of seconds, got -1$"),
        (-0.001, ValueError, "non-negative"),
        (-math.inf, ValueError, "non-negative"),
        (math.nan, ValueError, r"got nan$"),
        ("1", TypeError, r"^timeout must be a number of seconds or None, got '1'$"),
        (True, TypeError, "got True"),
        (False, TypeError, "got False"),
        (b"1", TypeError, "got b'1'"),
        ([1], TypeError, r"got \[1\]"),
    ],
)
def test_check_seconds_refuses(value: object, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        check_seconds(value, "timeout")


def test_check_seconds_without_none() -> None:
    with pytest.raises(TypeError, match=r"^delay must be a number of seconds, got None$"):
        check_seconds(None, "delay", allow_none=False)
    assert check_seconds(2, "delay", allow_none=False) == 2.0


@pytest.mark.parametrize("value", [1, 2, 65536, 10**12])
def test_check_count_accepts(value: int) -> None:
    assert check_count(value, "max_concurrency") == value


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (0, ValueError),
        (-1, ValueError),
        (1.0, TypeError),
        ("1", TypeError),
        (True, TypeError),
        (None, TypeError),
        (math.inf, TypeError),
    ],
)
def test_check_count_refuses(value: object, error: type[Exception]) -> None:
    with pytest.raises(error, match=rf"^max_concurrency must be a positive integer, got {value!r}"):
        check_count(value, "max_concurrency")


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b"abc", b"abc"),
        (b"", b""),
        (bytearray(b"xyz"), b"xyz"),
        (memoryview(b"hello"), b"hello"),
        (memoryview(b"hello")[1:4], b"ell"),
        (array.array("H", [1, 2]), array.array("H", [1, 2]).tobytes()),  # non-byte format
        (memoryview(array.array("i", [7])), array.array("i", [7]).tobytes()),
        (memoryview(b"abcd").cast("B", (2, 2)), b"abcd"),  # two-dimensional
    ],
    ids=repr,
)
def test_check_payload_gives_a_flat_byte_view(payload: Any, expected: bytes) -> None:
    view = check_payload(payload)
    assert isinstance(view, memoryview)
    assert (view.format, view.ndim, view.itemsize) == ("B", 1, 1)
    assert len(view) == len(expected)
    assert view.tobytes() == expected


def test_check_payload_shares_the_callers_buffer() -> None:
    # No copy: a view of the caller's bytearray.
    data = bytearray(b"abc")
    view = check_payload(data)
    data[0] = ord("z")
    assert view.tobytes() == b"zbc"


@pytest.mark.parametrize(
    "payload",
    ["text", 42, None, 1.5, [1, 2], object(), memoryview(b"abcdef")[::2]],
    ids=repr,
)
def test_check_payload_refuses(payload: object) -> None:
    with pytest.raises(TypeError, match="payload must be"):
        check_payload(payload)


@pytest.mark.parametrize("value", [None, "127.0.0.1", "::1", "0.0.0.0", "2001:db8::1"])
def test_check_local_address_accepts(value: str | None) -> None:
    assert check_local_address(value) == value


@pytest.mark.parametrize("value", ["localhost", "", "1.2.3", 127, b"127.0.0.1", "[::1]"])
def test_check_local_address_refuses(value: object) -> None:
    with pytest.raises(ValueError, match="local_address must be an IP address"):
        check_local_address(value)


def test_check_callback() -> None:
    assert check_callback(None, "on_report") is None
    assert check_callback(print, "on_report") is print
    with pytest.raises(TypeError, match=r"^on_report must be callable or None, got 3$"):
        check_callback(3, "on_report")


def test_options_check() -> None:
    options = Options.check(10, None, True, 5)
    assert options == Options(timeout=10.0, delay=None, read_reply=True, max_reply_bytes=5)
    assert (options.half_close, options.reply_until, options.reply_idle_timeout) == (
        True,
        None,
        None,
    )
    assert Options.check(None, DEFAULT_DELAY, False, 1).delay == 0.25
    with pytest.raises(ValueError, match="happy_eyeballs_delay"):
        Options.check(1, -1, False, 1)
    with pytest.raises(ValueError, match="max_reply_bytes"):
        Options.check(1, 1, False, 0)
    with pytest.raises(ValueError, match="timeout"):
        Options.check(math.nan, 1, False, 1)
