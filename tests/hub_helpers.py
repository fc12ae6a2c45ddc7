"""Helpers of the JupyterHub test (tests/test_hub.py): Unix users, the hub process, and clients of the hub's
REST API and of the users' servers (contents API, kernels and terminals over their websockets), as a real
client uses them."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- the README's commands -----------------------------------------------------------------------------------

def readme_blocks(section: str = "## Teaching on a JupyterHub") -> dict[str, list[str]]:
    """The bash blocks of the README's hub section, keyed by their first line (``# as root, ...``).

    Each block's commands are its lines without comments; the test runs exactly these (with its own user
    names, folders and ports substituted), so the README cannot drift from what is tested."""
    text = README.read_text()
    start = text.index(section)
    end = text.find("\n## ", start + len(section))
    body = text[start:end if end > 0 else None]
    blocks = {}
    for block in re.findall(r"```bash\n(.*?)```", body, flags=re.S):
        lines = block.splitlines()
        key = lines[0].strip()
        assert key.startswith("# as "), f"a README hub block must start with '# as <who>': {key!r}"
        commands = [re.sub(r"\s+#.*$", "", ln).rstrip() for ln in lines[1:]]
        blocks[key] = [c for c in commands if c and not c.lstrip().startswith("#")]
    return blocks


def substitute(command: str, mapping: dict[str, str]) -> str:
    """Replace whole words/paths of the README's example (user names, /opt/rnn-course...) by the test's."""
    for old, new in mapping.items():
        command = re.sub(r"(?<![\w.-])" + re.escape(old) + r"(?![\w-])", new, command)
    return command


# --- a checkout that other users cannot reach ----------------------------------------------------------------

def blocked_ancestor(path: Path) -> Path | None:
    """The topmost folder above ``path`` (or itself) that other users cannot traverse, or None."""
    for parent in reversed([path, *path.parents]):
        if not os.stat(parent).st_mode & 0o001:
            return parent
    return None


def in_private_mounts(exposed: list[Path], stage: Path, cwd: Path, command: str,
                      overlays: dict[Path, Path] | None = None) -> list[str]:
    """``command`` (shell) in a private mount namespace where every folder of ``exposed`` is reachable by
    every user, and each folder ``target`` of ``overlays`` shows the folder ``overlays[target]`` instead
    (e.g. the test's copy of /etc/profile.d with the file the README installs there, for the users' login
    shells, while the host's /etc stays untouched).

    CI runs from a clone that other users may not traverse (e.g. under /root, mode 0700), with a Python
    that may live there too (pyenv in /root/.pyenv), while the users' servers must run this clone's
    environment. In a mount namespace of its own (the hub and its children only, gone when they exit) each
    blocked folder is covered by an empty tmpfs (mode 0755) in which the exposed folders' paths are recreated
    and the folders bind-mounted back: every absolute path of the environment (the interpreter, scripts'
    shebangs, the editable install of course_lib) works for every user, and no permission on disk changes."""
    exposed = [p.resolve() for p in exposed]
    exposed = [p for p in exposed if not any(q != p and q in p.parents for q in exposed)]  # outermost only
    by_blocked: dict[Path, list[Path]] = {}
    for path in exposed:
        blocked = blocked_ancestor(path)
        if blocked is not None:
            by_blocked.setdefault(blocked, []).append(path)
    steps = []
    for n, (blocked, paths) in enumerate(sorted(by_blocked.items())):
        if blocked in (stage, *stage.parents):
            raise RuntimeError(f"the staging folder {stage} lies inside the blocked folder {blocked}")
        staged = [stage / f"{n}-{k}" for k in range(len(paths))]
        steps += [f"mkdir -p '{s}' && mount --bind '{p}' '{s}'" for p, s in zip(paths, staged, strict=True)]
        steps.append(f"mount -t tmpfs -o mode=0755 rnn-hub '{blocked}'")
        steps += [f"mkdir -p '{p}' && mount --bind '{s}' '{p}'" for p, s in zip(paths, staged, strict=True)]
    steps += [f"mount --bind '{source}' '{target}'" for target, source in (overlays or {}).items()]
    steps += [f"cd '{cwd}'", command]
    return ["unshare", "--mount", "--propagation", "private", "sh", "-ec", " && ".join(steps)]


# --- Unix users ----------------------------------------------------------------------------------------------

def user_exists(name: str) -> bool:
    return subprocess.run(["id", "-u", name], capture_output=True).returncode == 0


def kill_user_processes(name: str) -> None:
    """End every process of a user the test created (by pid), so that the user can be deleted."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        out = subprocess.run(["ps", "-u", name, "-o", "pid="], capture_output=True, text=True).stdout
        pids = [int(p) for p in out.split()]
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        if not pids:
            return
        time.sleep(2)


def remove_user(name: str) -> None:
    if user_exists(name):
        kill_user_processes(name)
        subprocess.run(["userdel", "--remove", name], capture_output=True)
    subprocess.run(["groupdel", name], capture_output=True)  # the user's own group, if userdel left it


# --- clients ------------------------------------------------------------------------------------------------

class HubAPI:
    """The hub's REST API with a service token (``/hub/api``)."""

    def __init__(self, url: str, token: str):
        self.url, self.token = url.rstrip("/"), token

    def __call__(self, method: str, path: str, **kw) -> requests.Response:
        headers = {"Authorization": f"token {self.token}"}
        return requests.request(method, f"{self.url}/hub/api{path}", headers=headers, timeout=60, **kw)

    def start_server(self, name: str, timeout: float = 300) -> None:
        r = self("POST", f"/users/{name}/server")
        assert r.status_code in (201, 202, 400), f"starting {name}'s server: {r.status_code} {r.text}"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            user = self("GET", f"/users/{name}").json()
            server = user.get("servers", {}).get("", {})
            if server.get("ready"):
                return
            time.sleep(1)
        raise AssertionError(f"{name}'s server did not become ready in {timeout} s: {user}")

    def user_token(self, name: str) -> str:
        r = self("POST", f"/users/{name}/tokens", json={"note": "rnn-course hub test", "expires_in": 3600})
        assert r.status_code == 201, f"token for {name}: {r.status_code} {r.text}"
        return r.json()["token"]


class UserServer:
    """One user's Jupyter server behind the hub, with that user's token."""

    def __init__(self, hub_url: str, name: str, token: str):
        self.name, self.token = name, token
        self.base = f"{hub_url.rstrip('/')}/user/{name}"
        self.kernel_id = None

    def request(self, method: str, path: str, **kw) -> requests.Response:
        headers = {"Authorization": f"token {self.token}"}
        return requests.request(method, self.base + path, headers=headers, timeout=120, **kw)

    def get_notebook(self, path: str) -> dict:
        r = self.request("GET", f"/api/contents/{path}", params={"content": 1})
        assert r.status_code == 200, f"{self.name} GET {path}: {r.status_code} {r.text[:300]}"
        return r.json()["content"]

    def put_notebook(self, path: str, nb: dict) -> None:
        r = self.request("PUT", f"/api/contents/{path}", json={"type": "notebook", "format": "json", "content": nb})
        assert r.status_code in (200, 201), f"{self.name} PUT {path}: {r.status_code} {r.text[:300]}"

    def execute(self, code: str, timeout: float = 900) -> str:
        """Run ``code`` in this user's kernel (started once, over the kernel websocket); return its stdout.

        Raises AssertionError with the traceback when the code raises."""
        import websocket

        if self.kernel_id is None:
            r = self.request("POST", "/api/kernels", json={"name": "python3"})
            assert r.status_code == 201, f"{self.name}: kernel not started: {r.status_code} {r.text[:300]}"
            self.kernel_id = r.json()["id"]
        session = uuid.uuid4().hex
        ws_url = self.base.replace("http://", "ws://") + f"/api/kernels/{self.kernel_id}/channels?session_id={session}"
        ws = websocket.create_connection(ws_url, header=[f"Authorization: token {self.token}"], timeout=timeout)
        try:
            msg_id = uuid.uuid4().hex
            ws.send(json.dumps({
                "header": {"msg_id": msg_id, "msg_type": "execute_request", "session": session,
                           "username": self.name, "version": "5.3", "date": ""},
                "parent_header": {}, "metadata": {}, "buffers": [], "channel": "shell",
                "content": {"code": code, "silent": False, "store_history": False, "user_expressions": {},
                            "allow_stdin": False, "stop_on_error": True},
            }))
            out, error, deadline = [], None, time.monotonic() + timeout
            while time.monotonic() < deadline:
                msg = json.loads(ws.recv())
                if msg.get("parent_header", {}).get("msg_id") != msg_id:
                    continue
                kind = msg["header"]["msg_type"]
                if kind == "stream":
                    out.append(msg["content"]["text"])
                elif kind == "error":
                    error = "\n".join(msg["content"]["traceback"])
                elif kind == "status" and msg["content"]["execution_state"] == "idle":
                    break
            else:
                raise AssertionError(f"{self.name}: code did not finish in {timeout} s:\n{code[:500]}")
        finally:
            ws.close()
        if error is not None:
            error = re.sub(r"\x1b\[[0-9;]*m", "", error)  # no terminal colours in the report
            raise AssertionError(f"{self.name}: the code raised:\n{error}")
        return "".join(out)

    def python(self, code: str, timeout: float = 300):
        """Evaluate ``code`` (whose last line is an expression) in this user's kernel; return it, via JSON."""
        *body, last = code.strip().splitlines()
        out = self.execute("\n".join([*body, "import json as _j", f"print('\\n' + _j.dumps({last}))"]), timeout)
        return json.loads(out.strip().splitlines()[-1])


# terminal output: colours, cursor moves, title and bracketed-paste switches, character-set selections
_ESCAPES = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[()][0-9A-Za-z]|[=>])")


class Terminal:
    """A JupyterLab terminal of one user's server, used as the browser's terminal panel uses it: created
    through the server's REST API (``POST /api/terminals``, through the hub's proxy with the user's token)
    and typed into over its websocket with terminado's messages (``["stdin", text]`` out,
    ``["stdout", text]`` back). The shell is whatever the server starts there (the user's login shell).

    ``run`` types a command line and then, on the same line, an ``echo`` of a marker with ``$?``; the marker
    as the shell prints it (digits in place of ``$?``) ends the command's output and gives its exit status.
    Output is the terminal's: the echoed input and the prompt included, carriage returns and escape
    sequences removed.

    A websocket that nobody reads for a while misses the server's pings and is closed by the server (the
    terminal itself lives on), as a browser tab's would be after sleeping: the panel reconnects, and so does
    this client, before typing after an idle spell and whenever the server closed it while waiting (terminado
    sends the terminal's recent output again to a new connection, so a marker printed meanwhile is found)."""

    IDLE = 20.0  # seconds without reading after which the websocket is opened afresh before typing

    def __init__(self, server: UserServer, timeout: float = 60):
        r = server.request("POST", "/api/terminals")
        assert r.status_code == 200, f"{server.name}: no terminal: {r.status_code} {r.text[:300]}"
        self.server, self.name = server, r.json()["name"]
        self.ws = None
        self._connect(timeout)
        self.run("true", timeout=timeout)  # the login shell has read its profile and shows a prompt

    def _connect(self, timeout: float = 60) -> None:
        import websocket

        if self.ws is not None:
            self.ws.close()
        url = self.server.base.replace("http://", "ws://") + f"/terminals/websocket/{self.name}"
        self.ws = websocket.create_connection(url, header=[f"Authorization: token {self.server.token}"],
                                              timeout=timeout)
        self.ws.send(json.dumps(["set_size", 50, 500]))  # rows, columns: wide, so commands are not wrapped
        self.used = time.monotonic()

    def _send(self, text: str) -> None:
        if time.monotonic() - self.used > self.IDLE:
            self._connect()
        self.ws.send(json.dumps(["stdin", text]))

    def run(self, command: str, timeout: float = 600) -> tuple[int, str]:
        """Type ``command`` (one line) and wait for its marker; return (exit status, output)."""
        return self.wait(self.start(command), timeout)

    def start(self, command: str) -> str:
        """Type ``command`` (one line) and return at once (e.g. a program that runs until Ctrl-C); ``wait``
        with the returned token gives its exit status and output."""
        assert "\n" not in command, f"one command line at a time: {command!r}"
        token = uuid.uuid4().hex[:12]
        self._send(f'{command}; echo "{token}:$?:{token}"\r')
        return token

    def interrupt(self) -> None:
        """Ctrl-C, as typed into the terminal."""
        self._send("\x03")

    def wait(self, token: str, timeout: float = 600) -> tuple[int, str]:
        """Wait for the marker of the command that ``start`` typed; return (exit status, output)."""
        import websocket

        command = f"the command with marker {token}"
        marker = re.compile(rf"{token}:(\d+):{token}")
        raw, out, deadline = "", "", time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.ws.settimeout(max(1.0, deadline - time.monotonic()))
            try:
                data = self.ws.recv()
            except websocket.WebSocketTimeoutException:
                break
            except websocket.WebSocketConnectionClosedException:
                data = ""
            self.used = time.monotonic()
            if not data:  # the server closed the websocket (not the terminal): read on through a new one
                self._connect()
                continue
            message = json.loads(data)
            if message[0] == "disconnect":
                raise AssertionError(f"{self.server.name}'s terminal closed during {command!r}:\n{out[-3000:]}")
            if message[0] != "stdout":
                continue
            raw += message[1]  # cleaned as a whole: an escape sequence or a \r\n may span two messages
            out = _ESCAPES.sub("", raw).replace("\r", "")
            found = marker.search(out)
            if found:
                return int(found.group(1)), out[:found.start()]
        raise AssertionError(f"{self.server.name}: {command!r} gave no marker in {timeout} s:\n{out[-3000:]}")

    def check(self, command: str, timeout: float = 600) -> str:
        """``run``, asserting exit status 0; return the output."""
        status, out = self.run(command, timeout)
        assert status == 0, f"{self.server.name} typed {command!r} in a terminal: exit {status}\n{out[-5000:]}"
        return out

    def close(self) -> None:
        self.ws.close()
        self.server.request("DELETE", f"/api/terminals/{self.name}")
