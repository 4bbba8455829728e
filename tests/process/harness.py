"""Process-level harness for rlog: real binaries, real sockets, loopback only.

A `Cluster` is one master plus N sentinels, each a `Node` running the `rlog` binary as a child
process. Ports are picked once per node (`free_port`: below the ephemeral range, reserved by a
lock file against parallel test processes) and kept across restarts so the master's
`--sentinels` list stays valid. Every child is killed by PID when the test ends (also
on failure): SIGTERM, a short grace, then SIGKILL.

Waiting is always for a condition (`wait_until`), bounded in time and in number of attempts.
Every HTTP call carries a timeout and goes to 127.0.0.1 only. Each thread has its own
requests.Session.
"""

from __future__ import annotations

import ctypes
import fcntl
import json
import os
import pathlib
import random
import signal
import socket
import subprocess
import threading
import time
from typing import Any, Callable, Iterable, Optional

import requests

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
DEFAULT_BIN = REPO_ROOT / "build" / "src" / "app" / "rlog"

HTTP_TIMEOUT = 10.0          # seconds, for every ordinary HTTP call
LONG_HTTP_TIMEOUT = 90.0     # seconds, for writes that are expected to park
STOP_GRACE = 2.0             # SIGTERM -> SIGKILL grace in the finalizer
DRAIN_TIMEOUT_MS = 1000      # master default in tests (a test may pass its own; the last flag wins)

# Short health thresholds so the suite is fast.
HEARTBEAT_MS = 50
SUSPECT_AFTER_MS = 300
UNHEALTHY_AFTER_MS = 800

# Environment variables the binary reads; never inherited from the caller's environment.
_CONFIG_ENV = (
    "ROLE", "PORT", "GRPC_PORT", "SENTINELS", "CONFIG", "NODE_ID", "HTTP_ADDRESS", "HTTP_THREADS",
    "MAX_BODY_BYTES", "ADVERTISE_HTTP", "GRPC_ADDRESS", "HEARTBEAT_MS", "SUSPECT_AFTER_MS",
    "UNHEALTHY_AFTER_MS", "DEFAULT_TIMEOUT_MS", "TICK_MS", "DRAIN_TIMEOUT_MS", "DATA_DIR", "FSYNC",
    "FSYNC_INTERVAL_MS", "LOG_LEVEL", "LOG_FORMAT",
)


# ------------------------------------------------------------------------------------------------
# Binary, ports, environment


def rlog_bin() -> str:
    """The binary under test: $RLOG_BIN, else build/src/app/rlog."""
    return os.environ.get("RLOG_BIN") or str(DEFAULT_BIN)


def rlog_bin_explicit() -> bool:
    return bool(os.environ.get("RLOG_BIN"))


_ports_lock = threading.Lock()
_ports_taken: set[int] = set()
_port_locks: list = []  # Open lock files: each keeps its port reserved until this process ends.
_PORT_LOCK_DIR = pathlib.Path("/tmp/rlog-test-ports")


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = pathlib.Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def _reserve(port: int) -> bool:
    """Whether `port` is reserved for this process now: no other test process holds its lock
    file and nothing listens on it."""
    _PORT_LOCK_DIR.mkdir(exist_ok=True)
    f = open(_PORT_LOCK_DIR / f"{port}.lock", "a")  # pylint: disable=consider-using-with
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", port))
    except OSError:
        f.close()
        return False
    _port_locks.append(f)
    return True


def free_port() -> int:
    """A loopback TCP port for a child to listen on, not handed out before in this run.

    Picked below the kernel's ephemeral range, so no outgoing connection of a test running in
    parallel can take it between now and the child's bind (a port from bind(0) can be), and
    reserved against other test processes with a lock file held until this process ends."""
    low, _ = _ephemeral_range()
    if low > 11000:
        rng = random.Random()
        with _ports_lock:
            for _ in range(200):
                port = rng.randrange(10000, low)
                if port not in _ports_taken and _reserve(port):
                    _ports_taken.add(port)
                    return port
    with _ports_lock:  # No room below the ephemeral range: the kernel's pick.
        for _ in range(100):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            if port not in _ports_taken:
                _ports_taken.add(port)
                return port
    raise RuntimeError("could not find a free loopback port")


def child_env(extra: Optional[dict] = None) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in _CONFIG_ENV}
    # Keep proxies away from loopback traffic of any child that might make HTTP calls.
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    if extra:
        env.update({k: str(v) for k, v in extra.items()})
    return env


_PR_SET_PDEATHSIG = 1


def _preexec_die_with_parent() -> None:
    # Only used when spawning from the main thread: PDEATHSIG fires when the *thread* that forked
    # the child exits, so a child spawned from a worker thread would die with that worker.
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except Exception:  # pragma: no cover - best effort safety net
        pass


# Every child started by this process, so an atexit / session hook can reap stragglers.
_all_procs_lock = threading.Lock()
_all_procs: list[subprocess.Popen] = []


def spawn(cmd: list[str], log_path: pathlib.Path, env: Optional[dict] = None,
          cwd: Optional[pathlib.Path] = None) -> subprocess.Popen:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        log.write(f"\n==== {time.strftime('%H:%M:%S')} start: {' '.join(cmd)}\n".encode())
        log.flush()
        main = threading.current_thread() is threading.main_thread()
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            env=child_env(env), cwd=str(cwd) if cwd else None,
            preexec_fn=_preexec_die_with_parent if main else None,
        )
    with _all_procs_lock:
        _all_procs.append(proc)
    return proc


def kill_procs(procs: Iterable[subprocess.Popen], grace: float = STOP_GRACE) -> None:
    """SIGCONT (in case one is stopped) and SIGTERM to all at once, wait up to `grace` in total,
    then SIGKILL whatever is left. By PID only."""
    live = [p for p in procs if p.poll() is None]
    for p in live:
        for sig in (signal.SIGCONT, signal.SIGTERM):
            try:
                os.kill(p.pid, sig)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + grace
    for p in live:
        try:
            p.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
    for p in live:
        if p.poll() is None:
            try:
                os.kill(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:  # pragma: no cover - a zombie we cannot reap
                pass


def kill_proc(proc: subprocess.Popen, grace: float = STOP_GRACE) -> Optional[int]:
    kill_procs([proc], grace)
    return proc.returncode


def reap_all() -> None:
    with _all_procs_lock:
        procs = list(_all_procs)
        _all_procs.clear()
    kill_procs(procs, grace=1.0)


# ------------------------------------------------------------------------------------------------
# Waiting


class WaitTimeout(AssertionError):
    pass


_TRANSIENT = (requests.RequestException, ValueError, KeyError, TypeError, IndexError)


def cut_wal_tail(wal_dir: pathlib.Path, keep: int) -> int:
    """A stopped node's WAL loses more than a power loss with `fsync: always` could take (for
    that, see power_loss): a test that needs a node to lack a tail another one holds, as a
    master with `fsync: never` may after a power loss (docs/wal-format.md). The last segment
    loses its entries after id `keep` (all of them if it starts after keep + 1; its header and the
    segments before it stay, so the node keeps its log id and accepted epoch). Records are
    u32 length, u32 crc, u8 type, u64 id, ...; preallocated zeros end the data. Returns the
    number of entries cut."""
    segments = sorted(wal_dir.glob("wal-*.log"))
    assert segments, f"no WAL segment in {wal_dir}"
    path = segments[-1]
    data = path.read_bytes()
    offset, cut_at, cut = 0, None, 0
    while offset + 8 <= len(data):
        length = int.from_bytes(data[offset:offset + 4], "little")
        if length == 0 or offset + 8 + length > len(data):
            break  # preallocated zeros, or a torn tail recovery drops anyway
        kind = data[offset + 8]
        rid = int.from_bytes(data[offset + 9:offset + 17], "little")
        if kind in (2, 4) and rid > keep:  # an entry, or a keyed entry (docs/wal-format.md)
            cut_at = offset if cut_at is None else cut_at
            cut += 1
        offset += 8 + length
    with open(path, "r+b") as f:
        f.truncate(cut_at if cut_at is not None else offset)
    return cut


def power_loss(journal: pathlib.Path, data_dir: pathlib.Path, rng: Optional[random.Random],
               cwd: Optional[pathlib.Path] = None) -> dict[str, tuple[int, int, str]]:
    """What a power loss does to the data directory of a node killed with SIGKILL that ran with
    `--test-sync-journal journal` (src/storage/sync_journal_file_system.h, docs/TESTING.md "Power
    loss"): every file keeps the bytes its last sync covered. Of the bytes written after that,
    by the dice, nothing reached the disk (the file ends where the sync left it), only the new
    size did (zeros), or a prefix did (a torn write: the rest reads as zeros). Directory changes
    are kept, as by a file system that journals them in order. Relative paths in the journal are
    taken from `cwd`. Returns {path: (bytes kept, bytes of data lost, how)} of the files that
    lost data. Without `rng`, cuts nothing and says what a power loss would take now (of a node
    that is stopped or dead), `how` empty.

    Every file under `data_dir` must be in the journal: a file the node wrote around it would
    escape the cut, so that is an AssertionError."""
    base = cwd or pathlib.Path.cwd()

    def resolve(path: str) -> str:
        return os.path.normpath(os.path.join(base, path))

    durable: dict[str, int] = {}  # path -> bytes its last sync covered
    for n, line in enumerate(journal.read_text().splitlines(), 1):
        op, *args = line.split("\t")
        paths = [resolve(a) for a in args[:2 if op == "rename" else 1]]
        if op in ("create", "lock"):
            durable[paths[0]] = 0
        elif op == "sync":
            durable[paths[0]] = int(args[1])
        elif op == "truncate":
            durable[paths[0]] = min(durable.get(paths[0], 0), int(args[1]))
        elif op == "rename":  # a file, or a directory with everything under it
            src, dst = paths
            for p in [p for p in durable if p == src or p.startswith(src + os.sep)]:
                durable[dst + p[len(src):]] = durable.pop(p)
        elif op == "remove":
            durable.pop(paths[0], None)
        else:
            raise AssertionError(f"{journal}:{n}: unknown line {line!r}")
    # The journal's line follows the call it records: a kill between a create and its line leaves
    # a file the journal does not know. Nothing was written to it yet (that waits for the create
    # to return), so an empty one is such a create; one holding bytes was written around the
    # journal.
    unknown = [str(p) for p in data_dir.rglob("*")
               if p.is_file() and str(p) not in durable and p.stat().st_size > 0]
    assert not unknown, f"files the sync journal {journal} does not know: {unknown}"
    lost: dict[str, tuple[int, int, str]] = {}
    for path, keep in sorted(durable.items()):
        if not os.path.isfile(path):
            continue  # removed by the test itself (a wiped directory)
        data = pathlib.Path(path).read_bytes()
        tail = data[keep:].rstrip(b"\0")  # preallocated zeros after the data are no loss
        if not tail:
            continue
        if rng is None:
            lost[path] = (keep, len(tail), "")
            continue
        how = rng.choice(("dropped", "zeros", "torn"))
        torn = rng.randrange(len(tail)) if how == "torn" else 0
        with open(path, "r+b") as f:
            if how == "dropped":
                f.truncate(keep)
            else:
                f.seek(keep + torn)
                f.write(bytes(len(tail) - torn))
        lost[path] = (keep + torn, len(tail) - torn, how)
    return lost


class Disks:
    """Data directories with sync journals, under `root`: node NAME keeps its log in
    root/data/NAME with `fsync: always` and journals its syncs to root/NAME.syncs
    (--test-sync-journal), so that it can lose power (lose_power)."""

    def __init__(self, root: pathlib.Path):
        self.root = root

    def data(self, name: str) -> pathlib.Path:
        return self.root / "data" / name

    def journal(self, name: str) -> pathlib.Path:
        return self.root / f"{name}.syncs"

    def args(self, name: str, *extra: str) -> list[str]:
        """The flags of node `name`, then `extra`."""
        return ["--data-dir", str(self.data(name)), "--fsync", "always", "--enable-test-faults",
                "--test-sync-journal", str(self.journal(name)), *extra]

    def journal_bytes(self, names: list[str]) -> int:
        """How much the journals of `names` hold: it grows with every sync."""
        return sum(self.journal(n).stat().st_size for n in names)


def lose_power(nodes: Iterable["Node"], disks: Disks, rng: random.Random,
               attempts: int = 500) -> dict[str, dict]:
    """`nodes` lose power at the same moment, one at which some of them has written bytes it has
    not synced yet: a power loss at another moment takes nothing kill -9 would not, and the
    nodes are seldom between a write and the end of its fsync. SIGSTOP to every node back to
    back, in an order the dice choose, and a wait until each is stopped (SIGSTOP is only on its
    way when kill returns); if no node has unsynced bytes, SIGCONT, a wait until some node synced
    again (so writes must be flowing), and again, up to `attempts` times. Then SIGKILL, and the
    files of each node with a journal in `disks` cut by power_loss (a node in memory loses all
    anyway). Returns what each of those lost."""
    nodes = list(nodes)
    rng.shuffle(nodes)
    names = [n.name for n in nodes if disks.journal(n.name).exists()]

    def unsynced():
        return any(power_loss(disks.journal(n), disks.data(n), None) for n in names)

    for _ in range(attempts):
        for n in nodes:
            os.kill(n.pid, signal.SIGSTOP)
        for n in nodes:
            _, status = os.waitpid(n.pid, os.WUNTRACED)
            assert os.WIFSTOPPED(status), f"{n.name} ended before its power loss: {status:#x}"
        if unsynced():
            break
        synced = disks.journal_bytes(names)
        for n in nodes:
            os.kill(n.pid, signal.SIGCONT)
        wait_until(lambda: disks.journal_bytes(names) > synced, 10, 0.0005,
                   f"another sync by one of {names} before their power loss")
    for n in nodes:
        os.kill(n.pid, signal.SIGKILL)
    for n in nodes:
        n.kill9()  # Reaps it (a second SIGKILL to a dead process changes nothing).
    return {n: power_loss(disks.journal(n), disks.data(n), rng) for n in names}


def describe_loss(lost: dict[str, tuple[int, int, str]]) -> str:
    """power_loss's answer in a few words, for failure messages."""
    if not lost:
        return "nothing unsynced"
    return f"{sum(n for _, n, _ in lost.values())} unsynced bytes of {len(lost)} file(s), " + (
        ", ".join(sorted({how for _, _, how in lost.values()})))


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05,
               desc: str = "condition") -> Any:
    """Polls `predicate` until it returns a truthy value, which is returned.

    Bounded both by `timeout` seconds and by timeout/interval + 2 attempts. Transient errors
    (connection refused while a node starts, a JSON body that is not there yet) count as "not yet";
    AssertionError from the predicate propagates at once.
    """
    deadline = time.monotonic() + timeout
    attempts = int(timeout / interval) + 2
    last: Any = None
    last_exc: Optional[BaseException] = None
    for _ in range(attempts):
        try:
            last = predicate()
            last_exc = None
            if last:
                return last
        except _TRANSIENT as e:
            last_exc = e
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        time.sleep(min(interval, remaining))
    raise WaitTimeout(
        f"timed out after {timeout:.1f}s waiting for {desc}; last value={_short(last)}; "
        f"last error={last_exc!r}")


def _short(v: Any, n: int = 600) -> str:
    s = repr(v)
    return s if len(s) <= n else s[:n] + f"... ({len(s)} chars)"


# ------------------------------------------------------------------------------------------------
# HTTP


_local = threading.local()


def session() -> requests.Session:
    """The calling thread's own session (requests.Session is not thread-safe)."""
    s = getattr(_local, "session", None)
    if s is None:
        s = requests.Session()
        s.trust_env = False  # no proxies, no netrc: traffic goes straight to 127.0.0.1
        _local.session = s
    return s


def json_body(resp: requests.Response) -> Any:
    try:
        return resp.json()
    except ValueError as e:
        raise AssertionError(
            f"{resp.request.method} {resp.url} -> {resp.status_code}: body is not JSON: "
            f"{resp.content[:300]!r}") from e


def assert_error(resp: requests.Response, status: int) -> dict:
    """`resp` has `status` and a JSON object body with a string "error"."""
    assert resp.status_code == status, (
        f"{resp.request.method} {resp.url}: expected {status}, got {resp.status_code}: "
        f"{resp.content[:300]!r}")
    body = json_body(resp)
    assert isinstance(body, dict) and isinstance(body.get("error"), str) and body["error"], (
        f"{resp.request.method} {resp.url} -> {status}: error body lacks \"error\": {body!r}")
    return body


# ------------------------------------------------------------------------------------------------
# Nodes


class Node:
    def __init__(self, name: str, role: str, workdir: pathlib.Path, args_fn: Callable[[], list[str]],
                 http_port: Optional[int] = None, grpc_port: Optional[int] = None,
                 env: Optional[dict] = None):
        self.name = name
        self.env = env  # extra environment for the child (the binary's own vars are never inherited)
        self.role = role
        self.http_port = http_port or free_port()
        self.grpc_port = grpc_port or free_port()
        self.workdir = workdir
        self.log_path = workdir / f"{name}.log"
        self._args_fn = args_fn
        self.proc: Optional[subprocess.Popen] = None
        self.starts = 0
        self.stopped = False  # SIGSTOPped
        self.prefix: list[str] = []  # run the binary under this command (e.g. prlimit ... --)

    # -- addresses
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def grpc_addr(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    # -- process control
    def command(self) -> list[str]:
        return self.prefix + [rlog_bin()] + self._args_fn()

    def start(self, wait: bool = True, timeout: float = 15.0) -> "Node":
        assert not self.running(), f"{self.name} is already running"
        self.proc = spawn(self.command(), self.log_path, env=self.env, cwd=self.workdir)
        self.starts += 1
        self.stopped = False
        if wait:
            self.wait_live(timeout)
        return self

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def wait_live(self, timeout: float = 15.0) -> None:
        def live():
            if self.proc is None or self.proc.poll() is not None:
                raise AssertionError(
                    f"{self.name} exited with {self.proc.returncode if self.proc else None} "
                    f"while starting:\n{self.log_tail()}")
            return self.get("/healthz", timeout=1.0).status_code == 200
        wait_until(live, timeout, 0.05, f"{self.name} /healthz")

    def kill9(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.stopped = False

    def stop(self) -> None:
        """SIGSTOP: the process freezes with its sockets open."""
        assert self.running()
        os.kill(self.proc.pid, signal.SIGSTOP)
        self.stopped = True

    def cont(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGCONT)
        self.stopped = False

    def terminate(self) -> None:
        """SIGTERM, without waiting."""
        assert self.running()
        os.kill(self.proc.pid, signal.SIGTERM)

    def wait_exit(self, timeout: float) -> int:
        assert self.proc is not None
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.name} did not exit within {timeout}s:\n{self.log_tail()}")

    def restart(self, wait: bool = True) -> "Node":
        if self.running():
            self.kill9()
        return self.start(wait=wait)

    def shutdown(self) -> Optional[int]:
        if self.proc is None:
            return None
        rc = kill_proc(self.proc)
        self.stopped = False
        return rc

    def log_tail(self, max_bytes: int = 12000) -> str:
        try:
            data = self.log_path.read_bytes()
        except FileNotFoundError:
            return "(no log)"
        if len(data) > max_bytes:
            data = b"...\n" + data[-max_bytes:]
        return data.decode("utf-8", "replace")

    # -- HTTP
    def get(self, path: str, params: Optional[dict] = None, timeout: float = HTTP_TIMEOUT,
            **kw) -> requests.Response:
        return session().get(self.url(path), params=params, timeout=timeout, **kw)

    def post(self, path: str, body: Any = None, data: Optional[bytes] = None,
             timeout: float = HTTP_TIMEOUT, headers: Optional[dict] = None) -> requests.Response:
        if data is None and body is not None:
            data = json.dumps(body).encode()
        h = {"Content-Type": "application/json"}
        if headers:
            h.update(headers)
        return session().post(self.url(path), data=data, headers=h, timeout=timeout)

    def request(self, method: str, path: str, timeout: float = HTTP_TIMEOUT,
                **kw) -> requests.Response:
        return session().request(method, self.url(path), timeout=timeout, **kw)

    def insert(self, message: str, w: Any = None, timeout_ms: Optional[int] = None,
               key: Optional[str] = None, http_timeout: float = HTTP_TIMEOUT,
               alias: bool = False) -> requests.Response:
        body: dict[str, Any] = {"message": message}
        if w is not None:
            body["w" if alias else "writeConcern"] = w
        if timeout_ms is not None:
            body["timeoutMs"] = timeout_ms
        if key is not None:
            body["idempotencyKey"] = key
        return self.post("/insert", body, timeout=http_timeout)

    def insert_ok(self, message: str, w: Any = 1, **kw) -> int:
        r = self.insert(message, w, **kw)
        assert r.status_code == 200, f"insert {message!r} w={w}: {r.status_code} {r.content[:300]!r}"
        body = json_body(r)
        assert isinstance(body.get("id"), int), f"insert {message!r}: no integer id in {body!r}"
        return body["id"]

    def get_all(self, timeout: float = HTTP_TIMEOUT) -> list[dict]:
        r = self.get("/get-all", timeout=timeout)
        assert r.status_code == 200, f"{self.name} /get-all -> {r.status_code} {r.content[:300]!r}"
        body = json_body(r)
        assert isinstance(body, list), f"{self.name} /get-all is not a list: {_short(body)}"
        return body

    def health(self, timeout: float = HTTP_TIMEOUT) -> dict:
        r = self.get("/health", timeout=timeout)
        assert r.status_code == 200, f"{self.name} /health -> {r.status_code} {r.content[:300]!r}"
        return json_body(r)

    def last_id(self) -> int:
        return self.health()["lastId"]

    def __repr__(self) -> str:
        return f"Node({self.name}, http={self.http_port}, grpc={self.grpc_port})"


def check_log(entries: list[dict], where: str = "log") -> None:
    """Invariants 1-3 on one node's /get-all: ids exactly 1..n in order, each entry well formed."""
    ids = [e.get("id") for e in entries]
    assert ids == list(range(1, len(entries) + 1)), (
        f"{where}: ids are not 1..{len(entries)} in order: {_short(ids)}")
    for e in entries:
        assert isinstance(e.get("message"), str), f"{where}: bad entry {e!r}"
        assert "timestamp" in e, f"{where}: entry without timestamp {e!r}"


class Cluster:
    """A master plus `n_sentinels` sentinels on loopback. Nothing runs until start()."""

    def __init__(self, workdir: pathlib.Path, n_sentinels: int = 2,
                 master_args: Iterable[str] = (),
                 sentinel_args: Iterable[str] | Callable[[int], list[str]] = ()):
        """sentinel_args: extra flags for every sentinel, or a function of the sentinel's index."""
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.master_args = list(master_args)
        self.sentinel_args = sentinel_args if callable(sentinel_args) else (
            lambda i, a=list(sentinel_args): list(a))
        self.sentinels: list[Node] = []
        for i in range(n_sentinels):
            name = f"s{i + 1}"
            node = Node(name, "sentinel", workdir, lambda: [])
            node._args_fn = self._sentinel_args_fn(node, i)
            self.sentinels.append(node)
        self.master = Node("master", "master", workdir, lambda: [])
        self.master._args_fn = self._master_args
        self._shut = False

    @property
    def size(self) -> int:
        return 1 + len(self.sentinels)

    @property
    def majority(self) -> int:
        return self.size // 2 + 1

    @property
    def nodes(self) -> list[Node]:
        return [self.master] + self.sentinels

    def sentinel_name(self, s: Node) -> str:
        """How the master names a sentinel in /health: the configured address."""
        return s.grpc_addr

    def _master_args(self) -> list[str]:
        return [
            "--role", "master",
            "--node-id", "master",
            "--http-address", "127.0.0.1", "--port", str(self.master.http_port),
            "--grpc-address", "127.0.0.1", "--grpc-port", str(self.master.grpc_port),
            "--sentinels", ",".join(s.grpc_addr for s in self.sentinels),
            "--heartbeat-ms", str(HEARTBEAT_MS),
            "--suspect-after-ms", str(SUSPECT_AFTER_MS),
            "--unhealthy-after-ms", str(UNHEALTHY_AFTER_MS),
            "--drain-timeout-ms", str(DRAIN_TIMEOUT_MS),
        ] + self.master_args

    def _sentinel_args_fn(self, node: Node, index: int) -> Callable[[], list[str]]:
        def args() -> list[str]:
            return [
                "--role", "sentinel",
                "--node-id", node.name,
                "--http-address", "127.0.0.1", "--port", str(node.http_port),
                "--grpc-address", "127.0.0.1", "--grpc-port", str(node.grpc_port),
            ] + self.sentinel_args(index)
        return args

    # -- lifecycle
    def start(self, sentinels: Optional[Iterable[int]] = None, wait_writable: bool = True,
              timeout: float = 20.0) -> "Cluster":
        """Starts the chosen sentinels (indices; default all), then the master."""
        idx = range(len(self.sentinels)) if sentinels is None else list(sentinels)
        for i in idx:
            self.sentinels[i].start(wait=False)
        for i in idx:
            self.sentinels[i].wait_live(timeout)
        self.master.start(wait=True, timeout=timeout)
        if wait_writable:
            self.wait_writable(timeout)
        return self

    def wait_writable(self, timeout: float = 20.0) -> dict:
        return wait_until(lambda: (lambda h: h if h.get("readOnly") is False else None)(
            self.master.health(timeout=2.0)), timeout, 0.05, "master /health readOnly=false")

    def wait_read_only(self, timeout: float = 20.0) -> dict:
        return wait_until(lambda: (lambda h: h if h.get("readOnly") is True else None)(
            self.master.health(timeout=2.0)), timeout, 0.05, "master /health readOnly=true")

    def sentinel_health(self, s: Node, health: Optional[dict] = None) -> dict:
        h = health if health is not None else self.master.health(timeout=2.0)
        name = self.sentinel_name(s)
        for entry in h.get("sentinels", []):
            if entry.get("name") == name:
                return entry
        raise AssertionError(f"master /health has no sentinel named {name!r}: {h!r}")

    def wait_converged(self, nodes: Optional[Iterable[Node]] = None, expected_len: Optional[int] = None,
                       timeout: float = 30.0) -> list[dict]:
        """Waits until every node's /get-all equals the master's (and has expected_len entries,
        or else the master shows all it holds: every node shows only what a majority holds, so
        right after a restart they may all agree on less than the log has)."""
        nodes = list(nodes) if nodes is not None else [n for n in self.nodes if n.running()]

        def converged():
            if expected_len is None:
                h = self.master.health(timeout=5.0)
                if h.get("visibleId") != h.get("lastId"):
                    return None
            ref = self.master.get_all(timeout=5.0)
            if expected_len is not None and len(ref) != expected_len:
                return None
            for n in nodes:
                if n is self.master:
                    continue
                if n.get_all(timeout=5.0) != ref:
                    return None
            return (ref,)  # a non-empty tuple is truthy even when the log is empty

        (ref,) = wait_until(converged, timeout, 0.1,
                         f"/get-all identical on {[n.name for n in nodes]}"
                         + (f" with {expected_len} entries" if expected_len is not None else ""))
        return ref

    def shutdown(self) -> None:
        if self._shut:
            return
        self._shut = True
        kill_procs([n.proc for n in self.nodes if n.proc is not None])

    def logs(self) -> list[tuple[str, str]]:
        return [(n.name, n.log_tail()) for n in self.nodes if n.starts]


# ------------------------------------------------------------------------------------------------
# Concurrent write load


class WriteLoad:
    """`threads` writer threads, each sending `per_thread` inserts to `node` one after another.

    Message i of thread t is f"{prefix}-t{t}-{i}" with writeConcern ws[(t + i) % len(ws)].
    Results are (message, w, status or None, body or exception text), in completion order.
    With retry_503 > 0, a 503 (read-only for a moment: nothing was appended) is re-sent, the same
    message, up to retry_503 more times, `retry_pause` apart; every 503 is counted in `refused`.
    """

    def __init__(self, node: Node, threads: int, per_thread: int, ws: Iterable[Any], prefix: str,
                 http_timeout: float = LONG_HTTP_TIMEOUT, retry_503: int = 0,
                 retry_pause: float = 0.02):
        self.node = node
        self.threads = threads
        self.per_thread = per_thread
        self.ws = list(ws)
        self.prefix = prefix
        self.http_timeout = http_timeout
        self.retry_503 = retry_503
        self.retry_pause = retry_pause
        self.refused = 0
        self.results: list[tuple[str, Any, Optional[int], Any]] = []
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    @property
    def total(self) -> int:
        return self.threads * self.per_thread

    def _run(self, t: int) -> None:
        for i in range(self.per_thread):
            msg = f"{self.prefix}-t{t}-{i}"
            w = self.ws[(t + i) % len(self.ws)]
            try:
                for attempt in range(self.retry_503 + 1):
                    r = self.node.insert(msg, w, http_timeout=self.http_timeout)
                    if r.status_code != 503 or attempt == self.retry_503:
                        break
                    assert_error(r, 503)
                    with self._lock:
                        self.refused += 1
                    time.sleep(self.retry_pause)  # pacing between retries, not a wait for a condition
                try:
                    body: Any = r.json()
                except ValueError:
                    body = r.content[:300]
                rec = (msg, w, r.status_code, body)
            except Exception as e:  # recorded and asserted on by the test
                rec = (msg, w, None, repr(e))
            with self._lock:
                self.results.append(rec)

    def start(self) -> "WriteLoad":
        for t in range(self.threads):
            th = threading.Thread(target=self._run, args=(t,), name=f"writer-{t}", daemon=True)
            th.start()
            self._threads.append(th)
        return self

    def done_count(self) -> int:
        with self._lock:
            return len(self.results)

    def join(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for th in self._threads:
            th.join(max(0.0, deadline - time.monotonic()))
        alive = [th.name for th in self._threads if th.is_alive()]
        assert not alive, f"writers still running after {timeout}s: {alive}"

    def acked(self) -> dict[str, int]:
        """message -> id for every 200."""
        with self._lock:
            return {m: b["id"] for (m, _, st, b) in self.results if st == 200}

    def failures(self) -> list[tuple[str, Any, Optional[int], Any]]:
        with self._lock:
            return [r for r in self.results if r[2] != 200]


class StoppableThreads:
    """Daemon threads running `self._run(arg)` until stop(): the writers' and readers' lifetime."""

    def _spawn(self, name: str, args: list) -> None:
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(a,), name=f"{name}-{i}",
                                          daemon=True) for i, a in enumerate(args)]

    def start(self):
        for th in self._threads:
            th.start()
        return self

    def stop(self, timeout: float) -> None:
        self._stop.set()
        deadline = time.monotonic() + timeout
        for th in self._threads:
            th.join(max(0.0, deadline - time.monotonic()))
        alive = [th.name for th in self._threads if th.is_alive()]
        assert not alive, f"still running after {timeout}s: {alive}"


class Writers(StoppableThreads):
    """`threads` writers sending inserts until stopped, each to the master, one at a time.

    Message i of writer t is f"{prefix}-{t}-{i}" (never sent twice; followed by `pad` dots),
    w cycles through `ws`. A write that fails or times out has an unknown outcome; only 200s are
    recorded as acknowledged."""

    def __init__(self, master: Node, threads: int, ws: list, prefix: str, pad: int = 0):
        self.master = master
        self.ws = ws
        self.prefix = prefix
        self.pad = "." * pad
        self.acked: dict[str, int] = {}
        self.sent_at: dict[str, float] = {}  # time.monotonic() before the request was sent
        self.concern: dict[str, object] = {}
        self.outcomes: dict[str, int] = {}  # status (or "error") -> count
        self._lock = threading.Lock()
        self._spawn(f"{prefix}-writer", list(range(threads)))

    def _run(self, t: int) -> None:
        i = 0
        while not self._stop.is_set():
            msg = f"{self.prefix}-{t}-{i}{self.pad}"
            w = self.ws[(t + i) % len(self.ws)]
            i += 1
            sent_at = time.monotonic()
            try:
                r = self.master.insert(msg, w, timeout_ms=1500, http_timeout=10)
                status, body = r.status_code, (r.json() if r.status_code == 200 else None)
            except Exception:  # the master is down: the outcome of this write is unknown
                status, body = "error", None
            with self._lock:
                self.outcomes[status] = self.outcomes.get(status, 0) + 1
                if status == 200:
                    self.acked[msg] = body["id"]
                    self.sent_at[msg] = sent_at
                    self.concern[msg] = w
            if status != 200:
                self._stop.wait(0.02)  # pacing while the cluster is down, not a wait for a state

    def acked_count(self) -> int:
        with self._lock:
            return len(self.acked)

    def acked_snapshot(self, concerns: Optional[Iterable] = None) -> dict[str, int]:
        """message -> id of every write acknowledged so far (of one of `concerns`, if given)."""
        with self._lock:
            keep = None if concerns is None else list(concerns)
            return {m: i for m, i in self.acked.items() if keep is None or self.concern[m] in keep}


def assert_acked_exactly_once(log: list[dict], acked: dict[str, int], where: str = "log") -> None:
    """Every acknowledged message appears exactly once, under the id it was acknowledged with."""
    check_log(log, where)
    count: dict[str, int] = {}
    by_msg: dict[str, int] = {}
    for e in log:
        count[e["message"]] = count.get(e["message"], 0) + 1
        by_msg[e["message"]] = e["id"]
    dup = sorted(m for m, k in count.items() if k > 1)
    assert not dup, f"{where}: duplicated messages {dup[:10]}"
    missing = sorted(m for m in acked if m not in by_msg)
    assert not missing, f"{where}: acknowledged but missing {missing[:10]} ({len(missing)} total)"
    wrong = [(m, i, by_msg[m]) for m, i in acked.items() if by_msg[m] != i]
    assert not wrong, f"{where}: acknowledged id differs from stored id (msg, acked, stored): {wrong[:10]}"
    ids = sorted(acked.values())
    assert len(set(ids)) == len(ids), f"{where}: two writes were acknowledged with the same id"


# ------------------------------------------------------------------------------------------------
# Certificates (for tls.*), made with the openssl CLI (scripts/install-deps.sh --with-tests)


class Pki:
    """Makes CAs and certificates under `root`: EC P-256, valid for `days` (1 by default)."""

    def __init__(self, root: pathlib.Path):
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def _openssl(self, *args: str) -> None:
        subprocess.run(["openssl", *args], cwd=self.root, check=True, capture_output=True,
                       timeout=60)

    def ca(self, name: str, days: int = 1) -> pathlib.Path:
        self._openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                      "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.pem",
                      "-days", str(days), "-subj", f"/CN={name}")
        return self.root / f"{name}.pem"

    def cert(self, name: str, ca: str, sans: str,
             days: int = 1) -> tuple[pathlib.Path, pathlib.Path]:
        """(certificate, key) for `name`, signed by CA `ca`, subjectAltName `sans`."""
        (self.root / f"{name}.ext").write_text(f"subjectAltName={sans}\n")
        self._openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                      "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                      "-subj", f"/CN={name}")
        self._openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem",
                      "-CAkey", f"{ca}.key", "-CAcreateserial", "-out", f"{name}.pem",
                      "-days", str(days), "-extfile", f"{name}.ext")
        return self.root / f"{name}.pem", self.root / f"{name}.key"

    def flags(self, cert: str, ca: str) -> list[str]:
        """rlog's tls.* flags for certificate `cert` trusting CA `ca`."""
        return ["--tls-ca-file", str(self.root / f"{ca}.pem"),
                "--tls-cert-file", str(self.root / f"{cert}.pem"),
                "--tls-key-file", str(self.root / f"{cert}.key")]
