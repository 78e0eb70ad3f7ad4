#!/usr/bin/env python3
"""A minimal gigwire WebSocket client, written from protocol/PROTOCOL.md alone.

Usage: python3 gigwire_client.py <ws-url> <access-token> <contact-user-id>

Connects with the subprotocols ["gigwire.v1.msgpack", "bearer.<token>"], reads `hello`, sends a
`ping` with an id and checks the `ok` reply, sends a `ping` without id and checks the `pong` push,
subscribes to the presence of <contact-user-id> and prints its initial state, then waits (20 s by
default, GIGWIRE_PRESENCE_TIMEOUT_S) for a `presence` push showing the contact online.

A close whose documented action is "reconnect" (PROTOCOL.md, Close codes; e.g. 1006) is followed
by a jittered backoff and a fresh connection that redoes every step (at most 3 times, each printed as
{"step": "reconnect", ...}); any other close ends the run.

Every step prints one JSON object per line on stdout ({"step": "...", ...}); failures print
{"step": "error", ...} and exit non-zero:
  0 success, 1 protocol or timeout failure, 2 usage error, 3 a missing Python dependency.

Uses Debian's python3-websockets (asyncio client; the sync client only exists from websockets 11)
and python3-msgpack (>= 1.0 decodes MessagePack `str` as `str`).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import time
from typing import Any

try:
    import msgpack
    import websockets
except ImportError as exc:  # pragma: no cover - depends on the machine
    print(json.dumps({"step": "error", "error": "missing-dependency", "message": str(exc)}), flush=True)
    sys.exit(3)

ENCODING_SUBPROTOCOL = "gigwire.v1.msgpack"
REQUEST_TIMEOUT_S = 10.0
HELLO_TIMEOUT_S = 10.0
MAX_REQUEST_ID = 2147483647
MAX_RECONNECTS = 3

# PROTOCOL.md "Close codes": the action for each code the server sends, then by range.
_CLOSE_ACTIONS = {
    1000: "stop", 1001: "reconnect", 1002: "stop", 1006: "reconnect", 1007: "stop", 1008: "stop",
    1009: "stop", 1011: "reconnect", 1012: "reconnect", 1013: "reconnect", 4001: "reauthenticate",
}


def close_action(code: int) -> str:
    if code in _CLOSE_ACTIONS:
        return _CLOSE_ACTIONS[code]
    if 4000 <= code <= 4099:
        return "reauthenticate"
    if 4500 <= code <= 4999:
        return "stop"
    return "reconnect"  # other 1000-2999, 3000-3999, 4100-4499, anything else


class ClientError(Exception):
    def __init__(self, kind: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.kind = kind
        self.extra = extra


def emit(step: str, **fields: Any) -> None:
    print(json.dumps({"step": step, **fields}, default=str), flush=True)


def is_int(value: Any) -> bool:
    # bool is a subclass of int in Python; the protocol's integers are never booleans.
    return isinstance(value, int) and not isinstance(value, bool)


class GigwireClient:
    """One connection: a reader task dispatching frames on `t`, requests matched by `id`."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.next_id = 0
        self.pending: dict[int, asyncio.Future] = {}
        self.hello: asyncio.Future = asyncio.get_running_loop().create_future()
        self.pushes: asyncio.Queue = asyncio.Queue()
        self.reader_error: BaseException | None = None

    def new_id(self) -> int:
        self.next_id = self.next_id + 1 if self.next_id < MAX_REQUEST_ID else 1
        return self.next_id

    async def send(self, frame: dict[str, Any]) -> None:
        await self.ws.send(msgpack.packb(frame))  # bytes -> one binary message

    async def request(self, t: str, d: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send {t, id, d?} and return the whole reply frame (`ok` or `error`)."""
        req_id = self.new_id()
        frame: dict[str, Any] = {"t": t, "id": req_id}
        if d is not None:
            frame["d"] = d  # optional fields are left out, never null
        fut = asyncio.get_running_loop().create_future()
        self.pending[req_id] = fut
        try:
            await self.send(frame)
            return await asyncio.wait_for(fut, timeout=REQUEST_TIMEOUT_S)
        except asyncio.TimeoutError:
            raise ClientError("timeout", f"no reply to {t} id={req_id} within {REQUEST_TIMEOUT_S}s") from None
        finally:
            self.pending.pop(req_id, None)

    async def reader(self) -> None:
        try:
            async for message in self.ws:
                if isinstance(message, str):
                    raise ClientError("bad-frame", "text message on a msgpack connection")
                frame = msgpack.unpackb(message)
                if not isinstance(frame, dict) or not isinstance(frame.get("t"), str):
                    raise ClientError("bad-frame", f"server frame is not an envelope: {frame!r}")
                self.dispatch(frame)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - reported to whoever waits
            self.reader_error = exc
        finally:
            failure = self.reader_error or ClientError(
                "closed", "connection closed", code=self.ws.close_code, reason=self.ws.close_reason
            )
            for fut in list(self.pending.values()) + [self.hello]:
                if not fut.done():
                    fut.set_exception(failure)
                    fut.exception()  # marks it retrieved: no "never retrieved" warning if nobody waits
            await self.pushes.put(None)  # wakes push waiters

    def dispatch(self, frame: dict[str, Any]) -> None:
        t = frame["t"]
        if t in ("ok", "error"):
            req_id = frame.get("id")
            fut = self.pending.get(req_id) if is_int(req_id) else None
            if fut is not None and not fut.done():
                fut.set_result(frame)
            else:
                emit("unmatched-reply", frame=frame)
        elif t == "hello":
            if not self.hello.done():
                self.hello.set_result(frame)
            else:
                emit("unexpected", message="second hello", frame=frame)
        elif t in ("presence", "pong", "notification"):
            self.pushes.put_nowait(frame)
        # any other t: a newer server; ignore it as the protocol says

    async def next_push(self, t: str, deadline: float) -> dict[str, Any]:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ClientError("timeout", f"no {t} push in time")
            try:
                frame = await asyncio.wait_for(self.pushes.get(), timeout=remaining)
            except asyncio.TimeoutError:
                raise ClientError("timeout", f"no {t} push in time") from None
            if frame is None:
                await self.pushes.put(None)
                raise self.reader_error or ClientError(
                    "closed", f"connection closed while waiting for {t}", code=self.ws.close_code
                )
            if frame["t"] == t:
                return frame
            emit("push", frame=frame)


def expect_ok(reply: dict[str, Any], what: str) -> dict[str, Any] | None:
    if reply.get("t") == "error":
        d = reply.get("d") or {}
        raise ClientError("error-reply", f"{what} failed: {d.get('code')}: {d.get('message')}", reply=reply)
    if reply.get("t") != "ok":
        raise ClientError("bad-reply", f"{what}: unexpected reply {reply!r}")
    return reply.get("d")


def check_presence_state(state: Any) -> None:
    if not isinstance(state, dict):
        raise ClientError("bad-reply", f"PresenceState is not a map: {state!r}")
    if not isinstance(state.get("userId"), str) or state.get("status") not in ("online", "offline"):
        raise ClientError("bad-reply", f"bad PresenceState: {state!r}")
    last_seen = state.get("lastSeenAt", "missing")
    if state["status"] == "online" and last_seen is not None:
        raise ClientError("bad-reply", f"online state with lastSeenAt {last_seen!r}")
    if state["status"] == "offline" and not (last_seen is None or isinstance(last_seen, str)):
        raise ClientError("bad-reply", f"offline state with lastSeenAt {last_seen!r}")


async def run(url: str, token: str, contact_id: str, presence_timeout_s: float) -> None:
    connect_kwargs: dict[str, Any] = {
        "subprotocols": [ENCODING_SUBPROTOCOL, f"bearer.{token}"],
        "open_timeout": 10,
        "close_timeout": 5,
        "max_size": 2**20,
    }
    try:
        ws = await websockets.connect(url, **connect_kwargs)
    except websockets.exceptions.InvalidStatusCode as exc:  # websockets < 14
        raise ClientError("handshake", f"upgrade refused with HTTP {exc.status_code}", status=exc.status_code) from None
    except (OSError, asyncio.TimeoutError, websockets.exceptions.InvalidHandshake) as exc:
        raise ClientError("handshake", f"{type(exc).__name__}: {exc}") from None

    try:
        emit("connect", url=url, subprotocol=ws.subprotocol, websockets=websockets.__version__)
        if ws.subprotocol != ENCODING_SUBPROTOCOL:
            raise ClientError("handshake", f"server chose subprotocol {ws.subprotocol!r}")

        client = GigwireClient(ws)
        reader = asyncio.create_task(client.reader())
        try:
            # hello: always the first frame.
            try:
                hello = await asyncio.wait_for(asyncio.shield(client.hello), timeout=HELLO_TIMEOUT_S)
            except asyncio.TimeoutError:
                raise ClientError("timeout", "no hello") from None
            hd = hello.get("d") or {}
            limits = hd.get("limits") or {}
            emit(
                "hello",
                connectionId=hd.get("connectionId"),
                userId=hd.get("userId"),
                serverTime=hd.get("serverTime"),
                heartbeatMs=hd.get("heartbeatMs"),
                protocolVersion=hd.get("protocolVersion"),
                encoding=hd.get("encoding"),
                limits=limits,
            )
            if hd.get("protocolVersion") != 1 or hd.get("encoding") != "msgpack":
                raise ClientError("bad-hello", f"unexpected hello {hello!r}")
            for key in ("serverTime", "heartbeatMs"):
                if not is_int(hd.get(key)):
                    raise ClientError("bad-hello", f"hello.{key} is not an integer: {hd.get(key)!r}")
            for key in ("maxFrameBytes", "maxMessagesPerSecond", "maxBurst", "maxBufferedBytes"):
                if not is_int(limits.get(key)):
                    raise ClientError("bad-hello", f"hello.limits.{key} is not an integer: {limits.get(key)!r}")

            # ping with id -> ok {serverTime}
            sent_at = time.monotonic()
            reply = await client.request("ping")
            d = expect_ok(reply, "ping") or {}
            if not is_int(d.get("serverTime")):
                raise ClientError("bad-reply", f"ping reply without integer serverTime: {reply!r}")
            emit("ping", id=reply.get("id"), serverTime=d["serverTime"], rttMs=round((time.monotonic() - sent_at) * 1000, 1))

            # ping without id -> pong push {serverTime}
            await client.send({"t": "ping"})
            pong = await client.next_push("pong", time.monotonic() + REQUEST_TIMEOUT_S)
            if not is_int((pong.get("d") or {}).get("serverTime")):
                raise ClientError("bad-reply", f"pong without integer serverTime: {pong!r}")
            emit("pong", serverTime=pong["d"]["serverTime"])

            # presence.subscribe -> ok {presence: [PresenceState]}
            reply = await client.request("presence.subscribe", {"userIds": [contact_id]})
            d = expect_ok(reply, "presence.subscribe") or {}
            states = d.get("presence")
            if not isinstance(states, list):
                raise ClientError("bad-reply", f"subscribe reply without presence list: {reply!r}")
            for state in states:
                check_presence_state(state)
            initial = next((s for s in states if s.get("userId") == contact_id), None)
            if initial is None:
                raise ClientError("bad-reply", f"subscribe reply lacks {contact_id}: {reply!r}")
            emit("subscribe", id=reply.get("id"), presence=states, contact=initial)

            # wait for the contact to come online (a push; or already online at subscribe time)
            if initial["status"] == "online":
                emit("online", userId=contact_id, source="subscribe", state=initial)
            else:
                deadline = time.monotonic() + presence_timeout_s
                while True:
                    push = await client.next_push("presence", deadline)
                    state = push.get("d")
                    check_presence_state(state)
                    emit("presence", state=state)
                    if state["userId"] == contact_id and state["status"] == "online":
                        emit("online", userId=contact_id, source="push", state=state)
                        break
        finally:
            reader.cancel()
            try:
                await reader
            except asyncio.CancelledError:
                pass

        await ws.close(code=1000, reason="done")
        emit("close", code=ws.close_code)
    finally:
        # Awaited object of websockets < 14 is no async context manager: close it ourselves.
        await ws.close()


def closed_code(exc: BaseException) -> int | None:
    if isinstance(exc, websockets.exceptions.ConnectionClosed):
        return exc.rcvd.code if exc.rcvd is not None else 1006
    if isinstance(exc, ClientError) and exc.kind == "closed":
        code = exc.extra.get("code")
        return code if is_int(code) else None
    return None


async def run_with_reconnect(url: str, token: str, contact_id: str, presence_timeout_s: float) -> None:
    """`run`, reconnecting as PROTOCOL.md says: on a "reconnect" close code, after a jittered backoff
    (first within 0-1 s, then doubling up to 30 s), with everything restored (hello, subscribe)."""
    attempt = 0
    while True:
        try:
            await run(url, token, contact_id, presence_timeout_s)
            return
        except (ClientError, websockets.exceptions.ConnectionClosed) as exc:
            code = closed_code(exc)
            if code is None or close_action(code) != "reconnect" or attempt >= MAX_RECONNECTS:
                raise
            attempt += 1
            delay = random.uniform(0, min(30.0, 2.0 ** (attempt - 1)))
            emit("reconnect", code=code, action=close_action(code), attempt=attempt, delayMs=round(delay * 1000))
            await asyncio.sleep(delay)


def main(argv: list[str]) -> int:
    if len(argv) != 4:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    _, url, token, contact_id = argv
    timeout = float(os.environ.get("GIGWIRE_PRESENCE_TIMEOUT_S", "20"))
    try:
        asyncio.run(run_with_reconnect(url, token, contact_id, timeout))
    except ClientError as exc:
        emit("error", error=exc.kind, message=str(exc), **exc.extra)
        return 1
    except websockets.exceptions.ConnectionClosed as exc:
        emit("error", error="closed", message=str(exc), code=closed_code(exc), action=close_action(closed_code(exc) or 1006))
        return 1
    except Exception as exc:  # noqa: BLE001 - any failure is a non-zero exit with a JSON line
        emit("error", error="exception", message=f"{type(exc).__name__}: {exc}")
        return 1
    emit("done", ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
