#!/usr/bin/env python3
"""A client for brick-lab's compute agent (``brick-lab agent``), for tempest plugins and
os-brick developers: the fetch-paths API of the os-brick spec (volume paths, available volumes,
search path), the inventory and the orphan oracle, over HTTP(S) with the agent's bearer token.

Standard library only; Python 3.9 or later. One module: copy it next to a test, or put its
folder on sys.path.

    from brick_lab_client import AgentClient, check

    src = AgentClient("http://10.0.0.11:8470", token_file="/etc/brick-lab/agent-token")
    dst = AgentClient("http://10.0.0.12:8470", token_file="/etc/brick-lab/agent-token")
    result = check(connection_info, attached_on=[dst], gone_from=[src])
    assert result.ok, result.summary()

Every failure is a BrickLabError with a code: the agent's own (UNAUTHORIZED, BAD_IQN,
AGENT_READ_ONLY, ...) or the client's (AGENT_UNREACHABLE, AGENT_TLS, BAD_REPLY,
PROTOCOL_UNKNOWN, AGENT_TOKEN_FILE). The command line (``python3 brick_lab_client.py --help``)
runs the same check from a shell.
"""

from __future__ import annotations

import argparse
import http.client
import json
import socket
import ssl
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Mapping, NoReturn, Optional, Sequence, Tuple

__all__ = [
    "AgentClient",
    "BrickLabError",
    "CheckResult",
    "HostVerdict",
    "PROTOCOLS",
    "check",
    "main",
    "protocol_of",
]

__version__ = "0.1.0"

#: The protocols of brick-lab's own connectors, as the agent's routes name them.
PROTOCOLS = ("iscsi", "nvmeof", "fc", "local")
# Cinder's driver_volume_type per protocol, where it differs from the protocol's name.
DRIVER_VOLUME_TYPES = {"fibre_channel": "fc"}

#: Exit codes of the command line.
EXIT_HOLDS = 0
EXIT_FAILS = 1
EXIT_USAGE = 2
EXIT_UNASKED = 3

# An error answer's text, when it is not the agent's JSON, is cut to this many characters.
_TEXT_SHOWN = 300


class BrickLabError(Exception):
    """What went wrong, with a stable code.

    ``code``: the agent's code when the agent answered with an error (``UNAUTHORIZED``,
    ``BAD_IQN``, ``AGENT_READ_ONLY``, ``ROUTE_UNKNOWN``...), ``HTTP_<status>`` when an error answer
    was not the agent's JSON, or one of the client's own: ``AGENT_UNREACHABLE``, ``AGENT_TLS``,
    ``BAD_REPLY``, ``PROTOCOL_UNKNOWN``, ``AGENT_TOKEN_FILE``.
    ``status``: the HTTP status of the answer, None when there was no answer.
    """

    def __init__(self, code: str, message: str, hint: Optional[str] = None, status: Optional[int] = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.hint = hint
        self.status = status

    def __reduce__(self) -> Any:
        # Picklable as it was made (a test runner sends failures between processes).
        return (self.__class__, (self.code, self.message, self.hint, self.status))

    def as_dict(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {"code": self.code, "message": self.message}
        if self.hint:
            out["hint"] = self.hint
        if self.status is not None:
            out["status"] = self.status
        return out


def protocol_of(properties: Mapping[str, Any]) -> str:
    """The protocol of Cinder connection_info, from its ``driver_volume_type`` (any case).

    Bare connection data (no ``driver_volume_type``) does not say: give the protocol yourself.
    """
    if not isinstance(properties, Mapping):
        raise BrickLabError(
            "PROTOCOL_UNKNOWN",
            f"connection properties are a {type(properties).__name__}, not a JSON object",
            "pass Cinder's connection_info {\"driver_volume_type\": ..., \"data\": {...}} or its data",
        )
    if "driver_volume_type" not in properties:
        raise BrickLabError(
            "PROTOCOL_UNKNOWN",
            "connection properties have no driver_volume_type (bare connection data): their protocol cannot be told",
            f"pass the protocol ({', '.join(PROTOCOLS)}), or Cinder's whole connection_info",
        )
    value = properties["driver_volume_type"]
    if isinstance(value, str) and value.lower() in DRIVER_VOLUME_TYPES:
        return DRIVER_VOLUME_TYPES[value.lower()]
    if isinstance(value, str) and value.lower() in PROTOCOLS and value.lower() != "fc":
        return value.lower()
    raise BrickLabError(
        "PROTOCOL_UNKNOWN",
        f"driver_volume_type {json.dumps(value, default=repr)} is not one brick-lab has a connector for",
        f"brick-lab's agent has the {', '.join(PROTOCOLS)} connectors",
    )


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """The agent never redirects: an answer that does is not followed (urllib would send the
    token on to wherever it points)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        return None


class AgentClient:
    """One host's brick-lab agent.

    ``url``: ``http://HOST:PORT`` or ``https://HOST:PORT`` (as ``brick-lab agent`` prints it).
    ``token`` or ``token_file`` (exactly one): the agent's bearer token, or the file holding it
    (read once, here). ``timeout``: seconds to wait for the connection and for each read.
    ``cafile``: a PEM file of the CA (or the self-signed certificate) an HTTPS agent's
    certificate is checked against; without it, the system's CAs. Proxies in the environment are
    not used: the token goes straight to the agent.

    Each call returns the agent's JSON answer (a dict) or raises BrickLabError.
    """

    def __init__(
        self,
        url: str,
        token: Optional[str] = None,
        token_file: Optional[str] = None,
        timeout: float = 30.0,
        cafile: Optional[str] = None,
    ) -> None:
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(f"agent URL {url!r}: not http://HOST:PORT or https://HOST:PORT")
        if (token is None) == (token_file is None):
            raise ValueError("give exactly one of token and token_file")
        if timeout <= 0:
            raise ValueError(f"timeout {timeout!r}: not a positive number of seconds")
        self.url = f"{parsed.scheme}://{parsed.netloc}{parsed.path.rstrip('/')}"
        self.timeout = float(timeout)
        self.cafile = cafile
        self._token = _read_token(token_file) if token_file is not None else _checked_token(token)
        handlers: List[Any] = [urllib.request.ProxyHandler({}), _NoRedirect()]
        if parsed.scheme == "https":
            try:
                context = ssl.create_default_context(cafile=cafile)
            except (OSError, ssl.SSLError) as e:
                raise BrickLabError(
                    "AGENT_TLS",
                    f"CA file {cafile}: cannot be read as PEM certificates: {e}",
                    "give the PEM certificate of the CA that signed the agent's (or the agent's own, self-signed)",
                ) from None
            handlers.append(urllib.request.HTTPSHandler(context=context))
        self._opener = urllib.request.build_opener(*handlers)

    def __repr__(self) -> str:
        return f"AgentClient({self.url!r})"

    # --- the routes ---------------------------------------------------------------------------

    def health(self) -> Dict[str, Any]:
        """The agent's node, kernel, state ("ready"), boot id and versions."""
        return self._request("GET", "/v1/health")

    def connectors(self) -> Dict[str, Any]:
        """``{"connectors": [{"protocol", "searchPath"}, ...]}``."""
        return self._request("GET", "/v1/connectors")

    def connector_properties(self, multipath: bool = False) -> Dict[str, Any]:
        """os-brick's connector properties of the host (``initiator``, ``nqn``, ``wwpns``, ``wwnns``,
        ``host``, ``ip``, ...): what a volume service's ``initialize_connection`` takes."""
        return self._request("GET", "/v1/connectors/properties" + ("?multipath=true" if multipath else ""))

    def search_path(self, protocol: str) -> Dict[str, Any]:
        """``{"searchPath": "/dev/disk/by-path"}`` (or null)."""
        return self._request("GET", f"/v1/connectors/{_seg(protocol)}/search-path")

    def volume_paths(self, protocol: str, properties: Mapping[str, Any]) -> Dict[str, Any]:
        """The paths and kernel devices the host has now for one volume: ``{"paths", "devices"}``."""
        return self._request("POST", f"/v1/connectors/{_seg(protocol)}/volume-paths", dict(properties))

    def volume_paths_batch(self, protocol: str, volumes: Sequence[Mapping[str, Any]]) -> Dict[str, Any]:
        """Many volumes from one read of the host: ``{"results": [{"paths", "devices"}, ...]}``, in order."""
        return self._request("POST", f"/v1/connectors/{_seg(protocol)}/volume-paths-batch", {"volumes": [dict(v) for v in volumes]})

    def available_volumes(self, protocol: str, properties: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
        """Every volume the connector sees on the host, or with properties the one they name: ``{"volumes": [...]}``."""
        return self._request("POST", f"/v1/connectors/{_seg(protocol)}/available-volumes", dict(properties or {}))

    def inventory(self) -> Dict[str, Any]:
        """A snapshot of what the host holds: SCSI devices, sessions, controllers, maps, links."""
        return self._request("GET", "/v1/inventory")

    def orphans(self, protocol: str, properties: Mapping[str, Any], wwid: Optional[str] = None) -> Dict[str, Any]:
        """What the host still holds of a detached volume: ``{"clean", "orphans", "kept", "volume"}``.

        ``wwid``: the SCSI WWID read at attach, when known (it finds a device whose LUN moved).
        """
        body: Dict[str, Any] = {"protocol": protocol, "properties": dict(properties)}
        if wwid is not None:
            body["wwid"] = wwid
        return self._request("POST", "/v1/inventory/orphans", body)

    def connect(self, protocol: str, properties: Mapping[str, Any], multipath: bool = False) -> Dict[str, Any]:
        """Attach a volume on the host (an agent started with --allow-attach): its device info."""
        return self._request("POST", f"/v1/connectors/{_seg(protocol)}/connect", {"properties": dict(properties), "multipath": bool(multipath)})

    def disconnect(self, protocol: str, properties: Mapping[str, Any], device_info: Optional[Mapping[str, Any]] = None, force: bool = False) -> Dict[str, Any]:
        """Detach a volume (an agent started with --allow-attach): ``{"removed", "errors", ...}``."""
        body: Dict[str, Any] = {"properties": dict(properties), "force": bool(force)}
        if device_info is not None:
            body["deviceInfo"] = dict(device_info)
        return self._request("POST", f"/v1/connectors/{_seg(protocol)}/disconnect", body)

    # --- HTTP ---------------------------------------------------------------------------------

    def _request(self, method: str, path: str, body: Optional[Any] = None) -> Any:
        headers = {
            "Authorization": f"Bearer {self._token}",
            "Accept": "application/json",
            "User-Agent": f"brick-lab-python-client/{__version__}",
        }
        data = None
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(f"{self.url}{path}", data=data, headers=headers, method=method)
        what = f"{method} {path}"
        try:
            with self._opener.open(req, timeout=self.timeout) as res:
                status = res.status
                text = res.read().decode("utf-8", errors="replace")
        except urllib.error.HTTPError as e:
            # An answer, of an error: the agent's code when it is the agent's JSON.
            try:
                text = e.read().decode("utf-8", errors="replace")
            except (OSError, http.client.HTTPException):
                text = ""
            finally:
                e.close()
            raise self._error_answer(what, e.code, text) from None
        except urllib.error.URLError as e:
            raise self._unreachable(what, e.reason) from None
        except (OSError, http.client.HTTPException) as e:
            # A timeout or a reset while the answer was read, a connection closed without one.
            raise self._unreachable(what, e) from None
        if status == 204:
            return None
        try:
            return json.loads(text)
        except ValueError:
            raise BrickLabError(
                "BAD_REPLY",
                f"agent at {self.url} answered {what} with HTTP {status} that is not JSON: {_shown(text)}",
                "is this URL a brick-lab agent? `brick-lab agent` prints the URL it serves",
                status,
            ) from None

    def _error_answer(self, what: str, status: int, text: str) -> BrickLabError:
        try:
            answer = json.loads(text)
        except ValueError:
            answer = None
        if isinstance(answer, dict) and isinstance(answer.get("code"), str) and isinstance(answer.get("message"), str):
            hint = answer.get("hint")
            return BrickLabError(answer["code"], answer["message"], hint if isinstance(hint, str) else None, status)
        return BrickLabError(
            f"HTTP_{status}",
            f"agent at {self.url} answered {what} with HTTP {status}: {_shown(text) or '(no body)'}",
            "is this URL a brick-lab agent? `brick-lab agent` prints the URL it serves",
            status,
        )

    def _unreachable(self, what: str, reason: Any) -> BrickLabError:
        if isinstance(reason, ssl.SSLCertVerificationError) or (isinstance(reason, ssl.SSLError) and "CERTIFICATE" in str(reason).upper()):
            return BrickLabError(
                "AGENT_TLS",
                f"agent at {self.url}: its certificate was not accepted ({what}): {_reason(reason)}",
                "give the CA that signed the agent's certificate (cafile, --cafile), or the agent's own when self-signed",
            )
        return BrickLabError(
            "AGENT_UNREACHABLE",
            f"agent at {self.url} did not answer {what}: {_reason(reason)}",
            "is `brick-lab agent` running on that host, listening on an address this machine reaches (--listen)?",
        )


def _seg(value: str) -> str:
    return urllib.parse.quote(str(value), safe="")


def _shown(text: str) -> str:
    text = text.strip()
    return text if len(text) <= _TEXT_SHOWN else f"{text[:_TEXT_SHOWN]}..."


def _reason(reason: Any) -> str:
    if isinstance(reason, (socket.timeout, TimeoutError)):
        return "timed out"
    if isinstance(reason, socket.gaierror):
        return f"host name not resolved ({reason.strerror or reason})"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return str(reason) or type(reason).__name__


def _checked_token(token: Optional[str]) -> str:
    if not isinstance(token, str) or not token.strip() or any(c.isspace() for c in token.strip()):
        raise ValueError("token: empty, or with white space inside")
    return token.strip()


def _read_token(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            token = f.read().strip()
    except (OSError, UnicodeDecodeError) as e:
        raise BrickLabError(
            "AGENT_TOKEN_FILE",
            f"token file {path}: cannot be read: {_reason(e)}",
            "give the token file the agent was started with (its --token-file, default /etc/brick-lab/agent-token), readable by this user",
        ) from None
    if not token or any(c.isspace() for c in token):
        raise BrickLabError(
            "AGENT_TOKEN_FILE",
            f"token file {path}: {'empty' if not token else 'white space inside the token'}",
            "the file holds one line: the agent's token",
        )
    return token


# --- the gate check ------------------------------------------------------------------------------


@dataclass
class HostVerdict:
    """One host's part of a check.

    ``expect``: "attached" or "gone". ``verdict``: "holds", "fails", or "error" when the host
    could not be asked (then ``code`` is the error's code and ``detail`` its message).
    ``paths``, ``devices``: what the agent answered (None when not asked or not answered);
    ``orphans``: the oracle's orphans (gone hosts only; None when not asked or not answered).
    """

    url: str
    expect: str
    verdict: str
    detail: str
    paths: Optional[List[str]] = None
    devices: Optional[List[str]] = None
    orphans: Optional[List[Dict[str, Any]]] = None
    code: Optional[str] = None

    def as_dict(self) -> Dict[str, Any]:
        return asdict(self)


@dataclass
class CheckResult:
    """``ok``: every host holds. ``hosts``: one HostVerdict per host, attached_on first, in order."""

    protocol: str
    hosts: List[HostVerdict] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(h.verdict == "holds" for h in self.hosts)

    @property
    def failed(self) -> List[HostVerdict]:
        return [h for h in self.hosts if h.verdict == "fails"]

    @property
    def errors(self) -> List[HostVerdict]:
        return [h for h in self.hosts if h.verdict == "error"]

    def as_dict(self) -> Dict[str, Any]:
        return {"ok": self.ok, "protocol": self.protocol, "hosts": [h.as_dict() for h in self.hosts]}

    def summary(self) -> str:
        """One line per host that does not hold (for an assertion's message), or that all hold."""
        bad = [h for h in self.hosts if h.verdict != "holds"]
        if not bad:
            return f"holds on {len(self.hosts)} host{'s' if len(self.hosts) != 1 else ''}"
        return "\n".join(f"{h.url} (expected {h.expect}): {h.verdict}: {h.detail}" for h in bad)


def check(
    properties: Mapping[str, Any],
    attached_on: Sequence[AgentClient] = (),
    gone_from: Sequence[AgentClient] = (),
    protocol: Optional[str] = None,
) -> CheckResult:
    """The os-brick spec's gate check: the volume is attached on every ``attached_on`` host and
    has left nothing on any ``gone_from`` host.

    An attached host holds when the agent finds a path or a device of the volume. A gone host
    holds when it finds neither and the orphan oracle answers clean. A host that cannot be asked
    gets verdict "error". ``protocol``: the given one, else the one of ``driver_volume_type``.
    Raises BrickLabError PROTOCOL_UNKNOWN when the protocol cannot be told, and ValueError when
    no host is given (a check of nothing would hold).
    """
    attached_on = list(attached_on)
    gone_from = list(gone_from)
    if not attached_on and not gone_from:
        raise ValueError("check: no host to check (give attached_on, gone_from or both)")
    if protocol is None:
        protocol = protocol_of(properties)
    elif protocol not in PROTOCOLS:
        raise BrickLabError("PROTOCOL_UNKNOWN", f"protocol {protocol!r} is not one brick-lab has a connector for", f"give one of {', '.join(PROTOCOLS)}")
    result = CheckResult(protocol=protocol)
    for client in attached_on:
        result.hosts.append(_attached(client, protocol, properties))
    for client in gone_from:
        result.hosts.append(_gone(client, protocol, properties))
    return result


def _attached(client: AgentClient, protocol: str, properties: Mapping[str, Any]) -> HostVerdict:
    try:
        paths, devices = _paths_of(client, protocol, properties)
    except BrickLabError as e:
        return _error(client, "attached", e)
    found = _named(paths, devices)
    if found:
        return HostVerdict(client.url, "attached", "holds", f"attached: {', '.join(found)}", paths, devices)
    return HostVerdict(client.url, "attached", "fails", "not attached: no path or device", paths, devices)


def _gone(client: AgentClient, protocol: str, properties: Mapping[str, Any]) -> HostVerdict:
    try:
        paths, devices = _paths_of(client, protocol, properties)
        answer = client.orphans(protocol, properties)
        if not isinstance(answer, dict) or not isinstance(answer.get("clean"), bool) or not isinstance(answer.get("orphans"), list):
            raise BrickLabError("BAD_REPLY", f"agent at {client.url} answered the orphans route without clean and orphans: {_shown(json.dumps(answer))}")
    except BrickLabError as e:
        return _error(client, "gone", e)
    orphans = answer["orphans"]
    wrong = []
    found = _named(paths, devices)
    if found:
        wrong.append(f"still has {', '.join(found)}")
    if orphans:
        wrong.append(f"orphans: {'; '.join(_orphan_text(o) for o in orphans)}")
    elif not answer["clean"]:
        wrong.append("orphans: the oracle answers not clean without naming one")
    if wrong:
        return HostVerdict(client.url, "gone", "fails", "; ".join(wrong), paths, devices, orphans)
    return HostVerdict(client.url, "gone", "holds", "gone: no path, device or orphan", paths, devices, orphans)


def _paths_of(client: AgentClient, protocol: str, properties: Mapping[str, Any]) -> Tuple[List[str], List[str]]:
    answer = client.volume_paths(protocol, properties)
    if not isinstance(answer, dict) or not isinstance(answer.get("paths"), list) or not isinstance(answer.get("devices"), list):
        raise BrickLabError("BAD_REPLY", f"agent at {client.url} answered volume-paths without paths and devices: {_shown(json.dumps(answer))}")
    return [str(p) for p in answer["paths"]], [str(d) for d in answer["devices"]]


def _named(paths: List[str], devices: List[str]) -> List[str]:
    """The devices (as /dev/NAME) then the paths, each once."""
    out: List[str] = []
    for item in [d if d.startswith("/") else f"/dev/{d}" for d in devices] + paths:
        if item not in out:
            out.append(item)
    return out


def _orphan_text(orphan: Any) -> str:
    if not isinstance(orphan, dict):
        return str(orphan)
    text = f"{orphan.get('kind', '?')} {orphan.get('id', '?')}"
    return f"{text} ({orphan['evidence']})" if orphan.get("evidence") else text


def _error(client: AgentClient, expect: str, e: BrickLabError) -> HostVerdict:
    return HostVerdict(client.url, expect, "error", f"{e.code}: {e.message}", code=e.code)


# --- the command line ----------------------------------------------------------------------------

_PROG = "brick_lab_client.py"

_DESCRIPTION = """\
A client of brick-lab's compute agent (brick-lab agent).

  check      the gate check: the volume attached on each --attached-on host, gone (no path,
             device or orphan) from each --gone-from host; a table, or JSON with --json
  paths      the volume's paths and devices on one host (JSON)
  volumes    every volume a connector sees on one host (JSON)
  inventory  a snapshot of what one host holds (JSON)
  orphans    what one host still holds of a detached volume (JSON)

Exit codes: 0 every host holds (or the call was answered); 1 a check fails; 3 a host could
not be asked (and none failed), or the call was not answered; 2 a usage error.
"""


class _Usage(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _Usage(f"{self.prog}: {message}")


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--token-file", required=True, metavar="FILE", help="the agent's token (its --token-file)")
    common.add_argument("--cafile", metavar="FILE", help="PEM CA an HTTPS agent's certificate is checked against")
    common.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS", help="for each connection and read (default 30)")

    p = _Parser(prog=_PROG, description=_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    c = sub.add_parser("check", parents=[common], help="the gate check over several hosts")
    c.add_argument("--properties", required=True, metavar="FILE", help="connection_info or its data, as JSON ('-': stdin)")
    c.add_argument("--protocol", choices=PROTOCOLS, help="when the properties have no driver_volume_type")
    c.add_argument("--attached-on", action="extend", nargs="+", default=[], metavar="URL", help="agents where the volume must be attached")
    c.add_argument("--gone-from", action="extend", nargs="+", default=[], metavar="URL", help="agents where it must have left nothing")
    c.add_argument("--json", action="store_true", help="print the result as JSON")

    for name, helptext in (("paths", "the volume's paths and devices on one host"), ("orphans", "what one host still holds of the volume")):
        s = sub.add_parser(name, parents=[common], help=helptext)
        s.add_argument("--url", required=True, help="the agent's URL")
        s.add_argument("--properties", required=True, metavar="FILE", help="connection_info or its data, as JSON ('-': stdin)")
        s.add_argument("--protocol", choices=PROTOCOLS, help="when the properties have no driver_volume_type")
        if name == "orphans":
            s.add_argument("--wwid", help="the SCSI WWID read at attach")

    v = sub.add_parser("volumes", parents=[common], help="every volume a connector sees on one host")
    v.add_argument("--url", required=True, help="the agent's URL")
    v.add_argument("--protocol", required=True, choices=PROTOCOLS)
    v.add_argument("--properties", metavar="FILE", help="narrow to the volume these name (JSON; '-': stdin)")

    i = sub.add_parser("inventory", parents=[common], help="a snapshot of what one host holds")
    i.add_argument("--url", required=True, help="the agent's URL")
    return p


def _load_properties(path: str) -> Dict[str, Any]:
    try:
        if path == "-":
            text = sys.stdin.read()
        else:
            with open(path, encoding="utf-8") as f:
                text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise _Usage(f"--properties {path}: cannot be read: {_reason(e)}") from None
    try:
        props = json.loads(text)
    except ValueError as e:
        raise _Usage(f"--properties {path}: not JSON: {e}") from None
    if not isinstance(props, dict):
        raise _Usage(f"--properties {path}: a JSON {type(props).__name__}, not an object (connection_info or its data)")
    return props


def _client(url: str, args: argparse.Namespace) -> AgentClient:
    try:
        return AgentClient(url, token_file=args.token_file, timeout=args.timeout, cafile=args.cafile)
    except ValueError as e:
        raise _Usage(str(e)) from None
    except BrickLabError as e:
        raise _Usage(f"{e.code}: {e.message}" + (f" ({e.hint})" if e.hint else "")) from None


def _protocol(args: argparse.Namespace, props: Mapping[str, Any]) -> str:
    if args.protocol:
        return str(args.protocol)
    try:
        return protocol_of(props)
    except BrickLabError as e:
        raise _Usage(f"{e.message}: give --protocol") from None


def _table(result: CheckResult) -> str:
    rows = [("HOST", "EXPECT", "VERDICT", "DETAIL")] + [(h.url, h.expect, h.verdict, h.detail) for h in result.hosts]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = [f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}" for r in rows]
    n = len(result.hosts)
    if result.ok:
        lines.append(f"check: holds on {'the' if n == 1 else 'all'} {n} host{'s' if n != 1 else ''}")
    else:
        said = []
        if result.failed:
            said.append(f"fails on {len(result.failed)}")
        if result.errors:
            said.append(f"could not ask {len(result.errors)}")
        lines.append(f"check: {' and '.join(said)} of {n} host{'s' if n != 1 else ''}")
    return "\n".join(lines)


def _run(argv: Sequence[str]) -> int:
    args = _parser().parse_args(list(argv))
    if args.command == "check":
        if not args.attached_on and not args.gone_from:
            raise _Usage(f"{_PROG} check: no host to check: give --attached-on URL, --gone-from URL or both")
        props = _load_properties(args.properties)
        protocol = _protocol(args, props)
        result = check(
            props,
            attached_on=[_client(u, args) for u in args.attached_on],
            gone_from=[_client(u, args) for u in args.gone_from],
            protocol=protocol,
        )
        print(json.dumps(result.as_dict(), indent=2) if args.json else _table(result))
        if result.failed:
            return EXIT_FAILS
        return EXIT_UNASKED if result.errors else EXIT_HOLDS

    client = _client(args.url, args)
    props = _load_properties(args.properties) if getattr(args, "properties", None) else None
    try:
        if args.command == "paths":
            assert props is not None
            answer = client.volume_paths(_protocol(args, props), props)
        elif args.command == "orphans":
            assert props is not None
            answer = client.orphans(_protocol(args, props), props, args.wwid)
        elif args.command == "volumes":
            answer = client.available_volumes(args.protocol, props)
        else:
            answer = client.inventory()
    except BrickLabError as e:
        sys.stderr.write(f"{_PROG}: {e.code}: {e.message}\n" + (f"  hint: {e.hint}\n" if e.hint else ""))
        return EXIT_UNASKED
    print(json.dumps(answer, indent=2))
    return EXIT_HOLDS


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The command line; returns its exit code."""
    try:
        return _run(sys.argv[1:] if argv is None else argv)
    except _Usage as e:
        sys.stderr.write(f"{e}\n(--help shows the usage)\n")
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
