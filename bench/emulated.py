"""The moto server in its own process (as AWS is remote: it does not share this process's
GIL), and the core resources a remediator needs, named as ``bench.cold.REMEDIATOR_ENV``."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from serverless_remediation.remediate.emulator import create_audit_table
from serverless_remediation.remediation.clients import Clients
from serverless_remediation.remediation.store import guard_key, to_wire

SERVE = """
import sys
from serverless_remediation.remediate.emulator import Emulator
emulator = Emulator().start()
print(emulator.endpoint_url, flush=True)
sys.stdin.read()  # until the bench closes our stdin (or dies)
emulator.stop()
"""


#: the same moto application, applying one request at a time: DynamoDB makes each conditional
#: write atomic, moto does not under concurrent requests (``bench.storms``)
SERVE_LOCKED = """
import logging, sys, threading
from werkzeug.serving import make_server
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication, MotoRequestHandler, create_backend_app,
)
from serverless_remediation.remediate.emulator import dynamodb_as_documented
dynamodb_as_documented()  # as the tests' emulator: transactions roll back per item
logging.getLogger("werkzeug").setLevel(logging.ERROR)
app = DomainDispatcherApplication(create_backend_app)
lock = threading.Lock()
def locked(environ, start_response):
    with lock:
        return list(app(environ, start_response))
server = make_server("127.0.0.1", 0, locked, True, request_handler=MotoRequestHandler)
threading.Thread(target=server.serve_forever, daemon=True).start()
print(f"http://127.0.0.1:{server.server_address[1]}", flush=True)
sys.stdin.read()
server.shutdown()
"""


@dataclass(frozen=True)
class Server:
    url: str
    pid: int


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def moto_server(python: str = sys.executable, *, locked: bool = False) -> Iterator[Server]:
    """Start the emulator in a child process; yield its endpoint URL and process id.
    ``locked``: one request at a time (``SERVE_LOCKED``)."""
    server = subprocess.Popen(
        [python, "-c", SERVE_LOCKED if locked else SERVE],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        if not url.startswith("http"):
            raise RuntimeError("the moto server did not start")
        yield Server(url, server.pid)
    finally:
        assert server.stdin is not None
        server.stdin.close()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def reset(endpoint_url: str) -> None:
    url = f"{endpoint_url}/moto-api/reset"
    request = urllib.request.Request(url, method="POST")  # noqa: S310 (loopback)
    with urllib.request.urlopen(request, timeout=30):  # noqa: S310 (loopback)
        pass


def create_core(clients: Clients, env: dict[str, str], switch: str) -> None:
    """Audit table, notice topic, switch parameter (``on``, ``off`` or ``dry-run``)."""
    create_audit_table(clients("dynamodb"), env["AUDIT_TABLE"])
    topic = env["NOTICE_TOPIC_ARN"].rsplit(":", 1)[1]
    clients("sns").create_topic(Name=topic)
    clients("ssm").put_parameter(
        Name=env["SWITCH_PARAMETER"], Value=switch, Type="String", Overwrite=True
    )


def clear_guards(clients: Clients, table: str, target: str) -> None:
    """Forget ``target``'s cooldown and breaker (a scenario that acts on one target again)."""
    clients("dynamodb").delete_item(TableName=table, Key=to_wire(guard_key(target)))
