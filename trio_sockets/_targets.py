"""Targets: ``Target``, its parsing, and the checks that name the offending value.

Part of the sans-I/O core: no ``await``, no clock, no socket calls.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterable, Iterable
from typing import Final

from ._addresses import _is_ip, format_address
from ._errors import TargetError

__all__ = ["Target", "check_targets", "parse_targets"]


@dataclasses.dataclass(frozen=True, slots=True)
class Target:
    """Where to connect: a host name or IP literal, and a TCP port (1..65535)."""

    host: str
    port: int

    def __post_init__(self) -> None:
        problem = _target_problem(self.host, self.port)
        if problem is not None:
            raise TargetError(f"{problem} in {self!r}")

    @classmethod
    def parse(cls, value: object) -> Target:
        """Parse ``Target``, ``"host:port"``, ``"[v6-literal]:port"`` or ``(host, port)``.

        Raises:
            TargetError: the value has no port, a port that is not an integer in
                1..65535 (service names such as ``http`` are refused), an empty host, a
                host with whitespace or control characters, a host that is not a string,
                a name DNS never accepts (an empty label, a label over 63 octets, over
                253 octets in all), or a URL (the message says to give ``host:port``).
        """
        if isinstance(value, Target):
            return value
        if isinstance(value, str):
            host, port_text = _split_host_port(value)
            port: object = _parse_port(port_text, value)
        elif isinstance(value, tuple):
            if len(value) != 2:
                raise TargetError(f"target tuple must be (host, port), got {value!r}")
            host, port = value
            if isinstance(host, str) and host.startswith("[") and host.endswith("]"):
                host = host[1:-1]
            if isinstance(port, str):
                port = _parse_port(port, value)
        else:
            raise TargetError(
                f"target must be 'host:port', '[v6]:port', (host, port) or a Target, got {value!r}"
            )
        try:
            return cls(host, port)  # type: ignore[arg-type]  # checked by __post_init__
        except TargetError:
            # Checked once, by the constructor; only a refusal asks again, so that the
            # message can name the whole value rather than the Target it would have made.
            raise TargetError(f"{_target_problem(host, port)} in target {value!r}") from None

    def __str__(self) -> str:
        return format_address((self.host, self.port))


def _split_host_port(value: str) -> tuple[str, str]:
    if "://" in value:
        # A URL names a protocol as well as a place; a target is the place alone. Said
        # plainly, or its colons would read as an IPv6 literal without brackets.
        raise TargetError(f"{value!r} is a URL; give host:port{_url_hint(value)}")
    if value.startswith("["):
        end = value.find("]")
        if end == -1:
            raise TargetError(f"missing ']' in IPv6 target {value!r}")
        host, rest = value[1:end], value[end + 1 :]
        if not rest.startswith(":"):
            raise TargetError(f"no port in target {value!r} (expected '[v6-literal]:port')")
        if not _is_ip(host, version=6):
            raise TargetError(f"{host!r} in {value!r} is not an IPv6 literal")
        return host, rest[1:]
    host, sep, port = value.rpartition(":")
    if not sep:
        raise TargetError(f"no port in target {value!r} (expected 'host:port')")
    if ":" in host:
        raise TargetError(f"IPv6 literal must be in brackets, as '[{host}]:{port}', got {value!r}")
    return host, port


def _url_hint(value: str) -> str:
    """ ", such as 'host:port'" when the URL names both (no guess of a default port)."""
    place = value.split("://", 1)[1].split("/", 1)[0].rpartition("@")[2]
    host, sep, port = place.rpartition(":")
    ok = sep and host and port.isascii() and port.isdigit()
    return f", such as {place!r}" if ok else ""


def _parse_port(text: str, value: object) -> int:
    # str.isdigit() accepts other scripts' digits and superscripts; ports are ASCII.
    if not (text.isascii() and text.isdigit()):
        raise TargetError(f"port must be an integer in 1..65535, got {text!r} in {value!r}")
    port = int(text)
    if not 1 <= port <= 65535:
        raise TargetError(f"port must be in 1..65535, got {port} in {value!r}")
    return port


def _target_problem(host: object, port: object) -> str | None:
    """What is wrong with a target's host or port, or ``None`` when both are valid."""
    if not isinstance(host, str):
        return f"host must be a string, got {host!r}"
    if not host:
        return "empty host"
    # isprintable() is False for every control and whitespace character but " ".
    if " " in host or not host.isprintable():
        return f"host {host!r} contains whitespace or control characters"
    # str(Target) writes "host:port" or "[v6]:port"; a host with brackets, or with a
    # colon that is not an IPv6 literal's, could not be read back.
    if "[" in host or "]" in host:
        return f"host {host!r} contains '[' or ']'"
    if ":" in host:
        if not _is_ip(host, version=6):
            return f"host {host!r} contains ':' but is not an IPv6 literal"
    else:
        # An IPv4 literal keeps DNS's rules too (short labels, none empty), so the name
        # is checked without telling the two apart: parsing it as an address first
        # cost more than the rest of the target's checks.
        problem = _dns_name_problem(host)
        if problem is not None:
            return f"host {host!r} is not a valid host name: {problem}"
    if isinstance(port, bool) or not isinstance(port, int):
        return f"port must be an integer in 1..65535, got {port!r}"
    if not 1 <= port <= 65535:
        return f"port must be in 1..65535, got {port!r}"
    return None


MAX_LABEL_OCTETS: Final = 63  # RFC 1035 section 2.3.4
MAX_NAME_OCTETS: Final = 253  # RFC 1035's 255, less the length octets at both ends


def _dns_name_problem(host: str) -> str | None:
    """What DNS could never accept in ``host``, or ``None``.

    Lengths are counted in octets of the name as it goes on the wire: the ASCII text, or
    for an internationalized name its IDNA encoding (``xn--...``). A name that the IDNA
    codec refuses is refused here too. The resolver is left to judge the rest (Trio's
    stricter IDNA 2008, say): whatever it raises becomes a ``ConnectError``.
    """
    try:
        wire = host.encode("ascii") if host.isascii() else host.encode("idna")
    except UnicodeError as exc:
        return str(exc)
    # One trailing dot names the root explicitly ("example.com."), it is not a label.
    name = wire[:-1] if wire.endswith(b".") else wire
    if len(name) > MAX_NAME_OCTETS:
        return f"{len(name)} octets, more than {MAX_NAME_OCTETS}"
    for label in name.split(b"."):
        if not label:
            return "an empty label"
        if len(label) > MAX_LABEL_OCTETS:
            return f"a label of {len(label)} octets, more than {MAX_LABEL_OCTETS}"
    return None


def check_targets(targets: object) -> Iterable[object] | AsyncIterable[object]:
    """Check that ``targets`` is a collection of targets, without reading it.

    Any iterable or async iterable will do; a single target (a string, bytes or a
    :class:`Target`) is a :class:`TargetError` and anything else a ``TypeError``, each
    naming the value.
    """
    if isinstance(targets, (str, bytes, Target)):
        raise TargetError(f"targets must be a list of targets, got a single {targets!r:.80}")
    if not isinstance(targets, (Iterable, AsyncIterable)):
        raise TypeError(
            f"targets must be an iterable or async iterable of targets, "
            f"got {type(targets).__name__}: {targets!r:.80}"
        )
    return targets


def parse_targets(targets: object) -> list[Target]:
    """Parse every target before any I/O; the error names the bad one and its index."""
    checked = check_targets(targets)
    if not isinstance(checked, Iterable):
        raise TypeError(
            f"targets must be an iterable that can be checked before any I/O, got an "
            f"async iterable: {targets!r:.80} (stream_to_many takes one)"
        )
    parsed = []
    for index, value in enumerate(checked):
        try:
            parsed.append(Target.parse(value))
        except TargetError as exc:
            raise TargetError(f"targets[{index}]: {exc}") from None
    return parsed
