"""A thin driver for supervisord, the process manager that runs the embedded servers.

supervisord keeps the servers running after the CLI exits, captures and rotates their logs, restarts
nothing behind our back (autorestart is off: a crash should be seen), and on shutdown stops exactly
the processes it started. We write its config, start it, and talk to it over XML-RPC on a Unix socket.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
import xmlrpc.client
from dataclasses import dataclass
from typing import Any, cast

from supervisor.xmlrpc import SupervisorTransport

from mdslab.errors import ServiceUnavailableError
from mdslab.polling import wait_until
from mdslab.services.layout import EmbeddedLayout
from mdslab.services.private import write_private
from mdslab.services.programs import ProgramSpec


@dataclass(frozen=True)
class ProcessInfo:
    name: str
    state: str  # RUNNING, STOPPED, FATAL, EXITED, STARTING, ...
    pid: int
    uptime_s: int
    log_file: str


def _quote_env(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%") + '"'


def render_config(layout: EmbeddedLayout, programs: list[ProgramSpec]) -> str:
    sock = layout.socket_path("supervisor")
    lines = [
        "[unix_http_server]",
        f"file={sock}",
        "chmod=0700",
        "",
        "[supervisord]",
        f"logfile={layout.log_dir / 'supervisord.log'}",
        "logfile_maxbytes=10MB",
        "logfile_backups=2",
        "loglevel=warn",
        f"pidfile={layout.supervisor_pidfile}",
        f"directory={layout.state_dir}",
        "nodaemon=false",
        "silent=true",
        "",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
        "",
        "[supervisorctl]",
        f"serverurl=unix://{sock}",
    ]
    # supervisord stops programs in reverse priority: later programs (the broker, which keeps its
    # log on S3) stop before the ones they depend on.
    for priority, program in enumerate(programs, start=1):
        command = " ".join(_quote_arg(part) for part in program.command)
        lines += [
            "",
            f"[program:{program.name}]",
            f"command={command}",
            f"priority={priority * 100}",
            "autostart=false",
            "autorestart=false",
            "startsecs=1",
            f"stopsignal={program.stop_signal}",
            f"stopwaitsecs={program.stop_wait_s}",
            "stopasgroup=true",
            "killasgroup=true",
            "redirect_stderr=true",
            f"stdout_logfile={layout.log_dir / (program.name + '.log')}",
            "stdout_logfile_maxbytes=20MB",
            "stdout_logfile_backups=3",
            f"directory={layout.state_dir}",
        ]
        if program.user:
            lines.append(f"user={program.user}")
        if program.env:
            pairs = ",".join(f"{key}={_quote_env(value)}" for key, value in program.env.items())
            lines.append(f"environment={pairs}")
    return "\n".join(lines) + "\n"


def _quote_arg(arg: str) -> str:
    """One argument of ``command=``: supervisord splits it as a POSIX shell would, then expands ``%(...)s``."""
    return shlex.quote(arg).replace("%", "%%")


class Supervisor:
    """One supervisord per state dir."""

    def __init__(self, layout: EmbeddedLayout) -> None:
        self.layout = layout

    def _proxy(self) -> Any:
        transport = SupervisorTransport(serverurl=f"unix://{self.layout.socket_path('supervisor')}")
        return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)

    def is_running(self) -> bool:
        try:
            return cast(str, self._proxy().supervisor.getState()["statename"]) == "RUNNING"
        except (OSError, xmlrpc.client.Fault, xmlrpc.client.ProtocolError):
            return False

    def start_daemon(self, programs: list[ProgramSpec], *, timeout_s: float = 15.0) -> None:
        """Write the config and start supervisord; it daemonizes and outlives this process."""
        self.layout.make_dirs()
        write_private(self.layout.supervisor_config, render_config(self.layout, programs))  # holds credentials
        subprocess.run(
            [sys.executable, "-m", "supervisor.supervisord", "-c", str(self.layout.supervisor_config)],
            check=True,
            capture_output=True,
            text=True,
        )
        if not wait_until(self.is_running, timeout_s=timeout_s, interval_s=0.1):
            raise ServiceUnavailableError(
                f"supervisord did not come up in {timeout_s:.0f}s: see {self.layout.log_dir / 'supervisord.log'}"
            )

    def start(self, name: str) -> None:
        info = self.info(name)
        if info.state in ("RUNNING", "STARTING"):
            return
        try:
            self._proxy().supervisor.startProcess(name, True)
        except xmlrpc.client.Fault as fault:
            tail = self.log_tail(name)
            raise ServiceUnavailableError(
                f"{name} failed to start ({fault.faultString}); last log line: {tail or '(empty)'} "
                f"[{self.layout.log_dir / (name + '.log')}]"
            ) from None

    def info(self, name: str) -> ProcessInfo:
        raw = self._proxy().supervisor.getProcessInfo(name)
        uptime = raw["now"] - raw["start"] if raw["statename"] == "RUNNING" else 0
        return ProcessInfo(name, raw["statename"], raw["pid"], uptime, raw["stdout_logfile"])

    def all_info(self) -> list[ProcessInfo]:
        return [self.info(raw["name"]) for raw in self._proxy().supervisor.getAllProcessInfo()]

    def log_tail(self, name: str, lines: int = 1) -> str:
        path = self.layout.log_dir / f"{name}.log"
        if not path.exists():
            return ""
        text = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
        return " | ".join(text[-lines:])

    def shutdown(self, *, timeout_s: float = 60.0) -> None:
        """Stop every program (each with its own stop signal), then supervisord itself."""
        proxy = self._proxy()
        proxy.supervisor.stopAllProcesses(True)
        proxy.supervisor.shutdown()
        wait_until(lambda: not self.layout.supervisor_pidfile.exists(), timeout_s=timeout_s, interval_s=0.1)
