"""The async robot client against hostile peers and against the stand-in's exact protocol."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import xmlrpc.client
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from emutui.backends.renode.robot import (
    KeywordArgumentsError,
    KeywordFailed,
    RobotClient,
    UnknownKeywordError,
)
from emutui.core.errors import DisconnectedError, ProtocolError

Reply = Callable[[int], bytes | None]  # connection number -> raw HTTP reply (None: hang up)


def http(body: bytes, status: str = "200 OK", length: int | None = None) -> bytes:
    n = len(body) if length is None else length
    return (
        f"HTTP/1.1 {status}\r\nContent-Type: text/xml\r\nContent-Length: {n}\r\n\r\n".encode()
        + body
    )


def xml_result(value: object) -> bytes:
    return xmlrpc.client.dumps((value,), methodresponse=True).encode()


@pytest.fixture
async def fake_server() -> AsyncIterator[Callable[[Reply], asyncio.Future[int]]]:
    """A tiny HTTP server on loopback answering with whatever the test scripts."""
    servers: list[asyncio.base_events.Server] = []

    async def make(reply: Reply) -> int:
        count = 0

        async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            nonlocal count
            count += 1
            head = await r.readuntil(b"\r\n\r\n")
            length = next(
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            )
            await r.readexactly(length)
            out = reply(count)
            if out is not None:
                w.write(out)
                await w.drain()
            w.close()

        srv = await asyncio.start_server(handle, "127.0.0.1", 0)
        servers.append(srv)
        port: int = srv.sockets[0].getsockname()[1]
        return port

    yield make  # type: ignore[misc]
    for s in servers:
        s.close()


async def test_malformed_xml_reply(fake_server: Callable[[Reply], object]) -> None:
    port = await fake_server(lambda n: http(b"<methodResponse><params><param><value><int>12"))
    with pytest.raises(ProtocolError, match="malformed XML-RPC reply"):
        await RobotClient("127.0.0.1", port).run_keyword("ExecuteCommand", "version")


async def test_garbage_instead_of_http(fake_server: Callable[[Reply], object]) -> None:
    port = await fake_server(lambda n: b"\x00\xff garbage garbage\r\n\r\n")
    with pytest.raises(ProtocolError, match="malformed HTTP status line"):
        await RobotClient("127.0.0.1", port).call("get_keyword_names")


async def test_http_error_status(fake_server: Callable[[Reply], object]) -> None:
    port = await fake_server(lambda n: http(b"nope", status="404 Not Found"))
    with pytest.raises(ProtocolError, match="HTTP 404"):
        await RobotClient("127.0.0.1", port).call("get_keyword_names")


async def test_truncated_body(fake_server: Callable[[Reply], object]) -> None:
    port = await fake_server(lambda n: http(xml_result("x")[:20], length=500))
    with pytest.raises(ProtocolError, match="truncated"):
        await RobotClient("127.0.0.1", port).call("get_keyword_names")


async def test_result_that_is_not_a_struct(fake_server: Callable[[Reply], object]) -> None:
    port = await fake_server(lambda n: http(xml_result(["not", "a", "struct"])))
    with pytest.raises(ProtocolError, match="expected a result struct"):
        await RobotClient("127.0.0.1", port).run_keyword("ExecuteCommand", "x")


async def test_unknown_status(fake_server: Callable[[Reply], object]) -> None:
    port = await fake_server(lambda n: http(xml_result({"status": "MAYBE"})))
    with pytest.raises(ProtocolError, match="unknown status 'MAYBE'"):
        await RobotClient("127.0.0.1", port).run_keyword("ExecuteCommand", "x")


async def test_fail_result_carries_renodes_message(fake_server: Callable[[Reply], object]) -> None:
    reply = {
        "status": "FAIL",
        "traceback": "at X",
        "error": "KeywordException: Could not execute command 'foo': No such command or "
        "device: foo\n",
    }
    port = await fake_server(lambda n: http(xml_result(reply)))
    with pytest.raises(KeywordFailed) as info:
        await RobotClient("127.0.0.1", port).run_keyword("ExecuteCommand", "foo")
    assert str(info.value) == "Could not execute command 'foo': No such command or device: foo"
    assert info.value.traceback == "at X"


async def test_pass_without_return_is_none(fake_server: Callable[[Reply], object]) -> None:
    port = await fake_server(lambda n: http(xml_result({"status": "PASS"})))
    assert await RobotClient("127.0.0.1", port).run_keyword("StartEmulation") is None


async def test_faults_are_mapped(fake_server: Callable[[Reply], object]) -> None:
    faults = {
        1: xmlrpc.client.Fault(1, 'Keyword "Nope" not found'),
        2: xmlrpc.client.Fault(
            2, 'Arguments types do not match any available keyword "ExecuteCommand" : []'
        ),
    }
    port = await fake_server(
        lambda n: http(xmlrpc.client.dumps(faults[n], methodresponse=True).encode())
    )
    client = RobotClient("127.0.0.1", port)
    with pytest.raises(UnknownKeywordError, match='Keyword "Nope" not found'):
        await client.run_keyword("Nope")
    with pytest.raises(KeywordArgumentsError, match="do not match"):
        await client.run_keyword("ExecuteCommand")


async def test_first_call_is_retried_once(fake_server: Callable[[Reply], object]) -> None:
    port = await fake_server(
        lambda n: None if n == 1 else http(xml_result({"status": "PASS", "return": "ok"}))
    )
    client = RobotClient("127.0.0.1", port)
    assert await client.run_keyword("ExecuteCommand", "version") == "ok"


async def test_later_calls_are_not_retried(fake_server: Callable[[Reply], object]) -> None:
    port = await fake_server(lambda n: None if n == 2 else http(xml_result({"status": "PASS"})))
    client = RobotClient("127.0.0.1", port)
    await client.run_keyword("StartEmulation")
    with pytest.raises(DisconnectedError, match="closed without a reply"):
        await client.run_keyword("StartEmulation")


async def test_nobody_listening() -> None:
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    client = RobotClient("127.0.0.1", port)
    with pytest.raises(DisconnectedError, match="is Renode running"):
        await client.call("get_keyword_names")


async def test_one_call_in_flight(fake_server: Callable[[Reply], object]) -> None:
    active = 0
    peak = 0

    port_holder: list[int] = []

    async def slow_server() -> int:
        async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            nonlocal active, peak
            active += 1
            peak = max(peak, active)
            head = await r.readuntil(b"\r\n\r\n")
            n = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            await r.readexactly(n)
            await asyncio.sleep(0.01)
            w.write(http(xml_result({"status": "PASS"})))
            await w.drain()
            active -= 1
            w.close()

        srv = await asyncio.start_server(handle, "127.0.0.1", 0)
        port_holder.append(srv.sockets[0].getsockname()[1])
        return port_holder[0]

    client = RobotClient("127.0.0.1", await slow_server())
    await asyncio.gather(*(client.run_keyword("StartEmulation") for _ in range(5)))
    assert peak == 1


# ------------------------------------------------------------- the stand-in's protocol


@pytest.fixture
def standin_proc(tmp_path: Path, standin: Path) -> object:
    env = dict(os.environ, TMPDIR=str(tmp_path))
    p = subprocess.Popen(
        [
            str(standin),
            "--disable-gui",
            "--plain",
            "--pid-file",
            str(tmp_path / "pid"),
            "--robot-server-port",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        text=True,
    )
    try:
        line = p.stdout.readline() if p.stdout else ""
        assert "Robot Framework remote server is listening on port" in line, line
        yield p, tmp_path, int(line.rsplit(" ", 1)[1])
    finally:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            raise AssertionError("the stand-in ignored SIGTERM") from None


def test_standin_files_and_exact_protocol(
    standin_proc: tuple[subprocess.Popen[str], Path, int],
) -> None:
    p, tmp, port = standin_proc
    assert int((tmp / "pid").read_text()) == p.pid
    assert (tmp / f"renode-{p.pid}" / "robot_port").read_text() == str(port)  # no newline
    server = xmlrpc.client.ServerProxy(f"http://127.0.0.1:{port}/")
    assert "ExecuteCommand" in server.get_keyword_names()
    assert server.run_keyword("StartEmulation", []) == {"status": "PASS"}  # no "return"
    assert server.run_keyword("ExecuteCommand", ["emulation IsStarted"])["return"].strip() == "True"
    fail = server.run_keyword("ExecuteCommand", ["foo"])
    assert fail["status"] == "FAIL" and set(fail) == {"status", "error", "traceback"}
    assert fail["error"] == (
        "KeywordException: Could not execute command 'foo': No such command or device: foo\n"
    )
    with pytest.raises(xmlrpc.client.Fault) as f1:
        server.run_keyword("Nope", [])
    assert (f1.value.faultCode, f1.value.faultString) == (1, 'Keyword "Nope" not found')
    with pytest.raises(xmlrpc.client.Fault) as f2:
        server.run_keyword("ExecuteCommand", [])
    assert f2.value.faultCode == 2
    assert (
        f2.value.faultString
        == 'Arguments types do not match any available keyword "ExecuteCommand" : []'
    )
    # Only Renode's three methods exist.
    with pytest.raises(xmlrpc.client.Fault):
        server.get_library_information()
    # Fragments are joined with spaces (the string[] overload).
    assert server.run_keyword("ExecuteCommand", ["version"])["return"].startswith("Renode, version")
    assert server.stop_remote_server() is True
    assert p.wait(30) == 0
    assert not (tmp / f"renode-{p.pid}").exists()


def test_standin_line_endings_and_tree(
    standin_proc: tuple[subprocess.Popen[str], Path, int],
) -> None:
    from emutui.sim.renode import demo_platform
    from emutui.sim.renode.emulation import Emulation, Logger
    from emutui.sim.renode.monitor import Monitor

    # The raw capture, before XML: written lines end in \r\n\r, values in \r\r\n (spec 3.4).
    mon = Monitor(Emulation(Logger(False, True)))
    text, errors = mon.execute(
        f'mach create "m"; machine LoadPlatformDescription @{demo_platform()}'
    )
    assert errors == []
    text, _ = mon.execute("sysbus ReadDoubleWord 0x40004FE0")
    assert text == "0x00000011\r\r\n"
    text, _ = mon.execute("start")
    assert text == "Starting emulation...\r\n\r"
    text, _ = mon.execute("peripherals")
    assert text.startswith(
        "Available peripherals:\r\n\r\r\n\r  sysbus (SystemBus)\r\n\r  │   \r\n\r"
    )
    assert (
        "  ├── uart0 (PL011)\r\n\r  │       <0x40004000, 0x40004FFF>\r\n\r  │       \r\n\r" in text
    )
    # A ;-line stops at the first failure.
    text, errors = mon.execute("nosuch; pause")
    assert errors == ["No such command or device: nosuch"] and text == ""
    _, _, port = standin_proc
    client = xmlrpc.client.ServerProxy(f"http://127.0.0.1:{port}/")
    assert client.run_keyword("ExecuteCommand", ["mach"])["status"] == "FAIL"


def test_standin_sigterm_is_a_clean_exit(
    standin_proc: tuple[subprocess.Popen[str], Path, int],
) -> None:
    p, tmp, _ = standin_proc
    p.send_signal(signal.SIGINT)
    assert p.wait(30) == 0
    assert not (tmp / f"renode-{p.pid}").exists()


def test_standin_rejects_console_with_hide_monitor(standin: Path) -> None:
    r = subprocess.run(
        [str(standin), "--console", "--hide-monitor"], capture_output=True, text=True, timeout=60
    )
    assert r.returncode != 0 and "cannot be used together" in r.stderr


def test_standin_version(standin: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "emutui", "sim", "renode", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0 and r.stdout.startswith("Renode, version 1.16.1")


def test_standin_telnet_monitor(tmp_path: Path, standin: Path) -> None:
    """``-P 0``: the Monitor over telnet, with Renode's preamble, banner, prompt and echo."""
    import socket

    env = dict(os.environ, TMPDIR=str(tmp_path))
    p = subprocess.Popen(
        [str(standin), "--disable-gui", "--plain", "-P", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        text=True,
    )
    try:
        assert p.stdout is not None
        line = p.stdout.readline()
        assert "[INFO] Monitor available in telnet mode on port" in line
        port = int(line.rsplit(" ", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
            got = b""
            while not got.endswith(b"(monitor) "):
                got += s.recv(4096)
            assert got.startswith(b"\xff\xfd\x00\xff\xfb\x01\xff\xfb\x03\xff\xfc\x22")
            assert b"Renode, version 1.16.1" in got
            s.sendall(b'mach create "tn"\r')
            got = b""
            while not got.endswith(b"(tn) "):
                got += s.recv(4096)
            assert got.startswith(b'mach create "tn"')  # echoed as typed
            s.sendall(b"bogus\r")
            got = b""
            while not got.endswith(b"(tn) "):
                got += s.recv(4096)
            assert b"No such command or device: bogus" in got
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(30)


def test_standin_uart_and_log_keywords(renode_like_board: object) -> None:
    """The Robot keywords renode-test uses, with Renode's named-argument syntax."""
    from emutui.core.instance import Instance

    board = renode_like_board
    assert isinstance(board, Instance) and board.handles is not None
    port = board.handles.channels["robot"].port
    rk = xmlrpc.client.ServerProxy(f"http://127.0.0.1:{port}/").run_keyword
    assert rk("CreateTerminalTester", ["sysbus.uart1"]) == {"status": "PASS", "return": 0}
    assert rk("CreateTerminalTester", ["sysbus.uart1"])["return"] == 0  # idempotent
    assert rk("CreateTerminalTester", ["sysbus.uart0", "timeout=5"])["return"] == 1
    two = rk("WriteLineToUart", ["hi there"])
    assert two["status"] == "FAIL" and "more than one tester" in two["error"]
    echoed = rk("WriteLineToUart", ["hi there", "testerId=0"])
    assert echoed["status"] == "PASS" and echoed["return"]["Line"] == "hi there"
    got = rk("WaitForLineOnUart", [r"tick (\d+)", "testerId=1", "treatAsRegex=true", "timeout=30"])
    assert got["status"] == "PASS" and got["return"]["Groups"][0].isdigit()
    missing = rk("WaitForLineOnUart", ["never printed", "testerId=0", "timeout=0.2"])
    assert missing["status"] == "FAIL" and "Terminal tester failed!" in missing["error"]
    assert rk("CreateLogTester", ["10"]) == {"status": "PASS"}
    assert rk("ExecuteCommand", ["pause"])["status"] == "PASS"
    entry = rk("WaitForLogEntry", ["Machine paused", "startEmulation=false"])
    assert entry == {"status": "PASS", "return": "board: Machine paused."}
    with pytest.raises(xmlrpc.client.Fault) as fault:  # SmartParser cannot convert: fault 2
        rk("WaitForLogEntry", ["x", "timeout=notanumber"])
    assert fault.value.faultCode == 2
