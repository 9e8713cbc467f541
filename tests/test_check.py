"""``tavus-monitor check URL`` against a real handler on loopback, run as the user runs it.

The handler (tests/handler.py) serves in the test's loop while the installed command runs as
a subprocess, so every case is a real POST and every verdict is about a real answer.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from pathlib import Path
from typing import Any

from handler import Answer, Handler, Received, running_handler
from headless_process import tavus_monitor

from tavus_monitor.check import TRANSCRIPT_BYTES, cases

RUN_WITHIN = 90.0
"""Seconds a whole check may take here (21 loopback POSTs, one of 5 MB, one hanging case)."""
DEADLINE = "3"
"""The check's --deadline in these tests: the hanging case costs this long."""
NAMES = [case.name for case in cases("http://127.0.0.1/")]
REASON_CASE = "shutdown with reason"
LONG_CASE = "5 MB transcript"
HOSTILE = b"\x1b[2J\x1b]52;c;cm0gLXJmIH4=\x07Traceback: KeyError 'shutdown_reason'"


async def run_check(cwd: Path, *args: str) -> tuple[int, str, str]:
    """``tavus-monitor check *args``; its exit code, stdout and stderr."""
    environment = dict(os.environ, PYTHONIOENCODING="utf-8")
    process = await asyncio.create_subprocess_exec(
        *tavus_monitor("check", *args),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=cwd,
        env=environment,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), RUN_WITHIN)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return process.returncode, out.decode("utf-8"), err.decode("utf-8")


def picky(got: Received) -> Answer:
    """A handler with two bugs: it reads only ``shutdown_reason`` (500 with a hostile error
    page when the shutdown says ``reason``), and it hangs on a long call's transcript."""
    if len(got.body) >= TRANSCRIPT_BYTES:
        return Answer(200, delay=RUN_WITHIN)
    body: dict[str, Any] = json.loads(got.body)
    properties = body.get("properties") or {}
    if body.get("event_type") == "system.shutdown" and "shutdown_reason" not in properties:
        return Answer(500, body=HOSTILE, headers={"content-type": "text/plain"})
    return Answer()


def rows(stdout: str) -> dict[str, str]:
    """The table's rows by case name: the rest of each case's line."""
    found: dict[str, str] = {}
    for line in stdout.splitlines():
        for name in NAMES:
            if line.startswith(name + "  "):
                found[name] = line[len(name) :].strip()
    return found


async def test_a_handler_with_two_bugs_is_told_exactly_those_two(tmp_path: Path) -> None:
    async with running_handler() as handler:
        handler.answer = picky
        code, out, err = await run_check(tmp_path, handler.url, "--deadline", DEADLINE)
    assert code == 1, err
    table = rows(out)
    assert list(table) == NAMES
    failed = {name for name, rest in table.items() if "FAIL" in rest}
    assert failed == {REASON_CASE, LONG_CASE}
    assert "answered 500" in table[REASON_CASE]
    assert f"no answer within {DEADLINE} s" in table[LONG_CASE]
    assert "19 of 21 passed, 2 failed" in out
    # Each failure says why the case exists; the hostile answer is shown, but inert.
    assert "properties.reason instead of shutdown_reason" in out
    assert "KeyError 'shutdown_reason'" in out
    assert "\x1b" not in out
    assert "\x07" not in out
    assert max(len(line) for line in out.splitlines()) <= 80
    assert err == ""


async def test_a_handler_that_accepts_everything_passes_every_case(tmp_path: Path) -> None:
    async with running_handler() as handler:
        code, out, err = await run_check(tmp_path, handler.url)
        first = [json.loads(got.body) for got in handler.received]
        raw = [got.body for got in handler.received]
        agents = {got.header("user-agent") for got in handler.received}
        types = {got.header("content-type") for got in handler.received}
        handler.received.clear()
        again, _, _ = await run_check(tmp_path, handler.url)
        second = [json.loads(got.body) for got in handler.received]
    assert (code, again, err) == (0, 0, "")
    table = rows(out)
    assert list(table) == NAMES
    assert all(rest.endswith("pass") for rest in table.values())
    assert "21 of 21 passed, 0 failed" in out
    assert max(len(line) for line in out.splitlines()) <= 80
    assert len(first) == len(NAMES)
    assert types == {"application/json"}
    assert all(agent and agent.startswith("tavus-monitor-check/") for agent in agents)

    sent = dict(zip(NAMES, first, strict=True))
    # The redelivery is the shutdown byte for byte; the join twins are one call.
    assert (
        raw[NAMES.index("redelivery (same bytes)")] == raw[NAMES.index("shutdown_reason, reached")]
    )
    assert sent["pal_joined twin"]["conversation_id"] == sent["replica_joined"]["conversation_id"]
    assert sent["pal_joined twin"]["event_type"] == "system.pal_joined"
    assert sent[REASON_CASE]["properties"]["reason"] == "max_call_duration reached"
    assert "shutdown_reason" not in sent[REASON_CASE]["properties"]
    assert sent["reason without reached"]["properties"]["shutdown_reason"] == "max_call_duration"
    assert len(raw[NAMES.index(LONG_CASE)]) >= TRANSCRIPT_BYTES
    assert sent["canvas.interaction"]["message_type"] == "canvas"
    assert sent["post-call body string"]["properties"]["request"]["body"][:1] == "{"
    assert isinstance(sent["post-call body object"]["properties"]["request"]["body"], dict)
    assert sent["video error, null URLs"]["download_url"] is None
    assert all(body.get("webhook_url", handler.url) == handler.url for body in first)
    # A new run is new calls: a handler's idempotency store does not mistake it for the last.
    before = {body.get("conversation_id") for body in first} - {None}
    after = {body.get("conversation_id") for body in second} - {None}
    assert before
    assert after
    assert not before & after
    assert all(re.fullmatch(r"c[0-9a-f]+", cid) for cid in before | after)


async def test_json_reports_the_same_verdicts_for_ci(tmp_path: Path) -> None:
    async with running_handler() as handler:
        handler.answer = picky
        code, out, _ = await run_check(tmp_path, handler.url, "--deadline", DEADLINE, "--json")
    assert code == 1
    report = json.loads(out)
    assert report["url"] == handler.url
    assert (report["total"], report["passed"], report["failed"]) == (21, 19, 2)
    assert report["error"] is None
    assert [case["name"] for case in report["cases"]] == NAMES
    by_name = {case["name"]: case for case in report["cases"]}
    assert {name for name, case in by_name.items() if not case["passed"]} == {
        REASON_CASE,
        LONG_CASE,
    }
    assert by_name[REASON_CASE]["status"] == 500
    assert "KeyError 'shutdown_reason'" in by_name[REASON_CASE]["response"]
    assert by_name[LONG_CASE]["status"] is None
    assert by_name[LONG_CASE]["bytes"] >= TRANSCRIPT_BYTES
    assert all(case["why"] for case in report["cases"])


async def test_nothing_listening_is_one_sentence_not_a_table_of_failures(tmp_path: Path) -> None:
    handler = Handler()  # a free port, never started: the connection is refused
    code, out, err = await run_check(tmp_path, handler.url)
    assert code == 1
    assert out == ""
    assert (
        err
        == f"tavus-monitor check: connection refused: is your server running on :{handler.port}?\n"
    )


async def test_a_url_that_is_not_http_is_a_usage_error(tmp_path: Path) -> None:
    code, out, err = await run_check(tmp_path, "localhost:3000/webhook")
    assert (code, out) == (2, "")
    assert len(err.strip().splitlines()) == 1
    assert "http://" in err
