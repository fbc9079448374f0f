"""The supervisor that runs student code: a script of the standard library only, started by the
grader as ``python -I sandbox.py`` with a JSON job on stdin; it answers with JSON on stdout.

It becomes a *subreaper* (Linux), so every process the tests start, even one that detaches
with ``setsid`` or a double fork, stays its descendant. It runs pytest in a new session with
the job's clean environment and cwd, writes pytest's output to a file (never a pipe that a
forked child could hold open), and reads the test events the grader's plugin sends over a pipe
of its own: each line carries an HMAC-SHA256 under a key that reached the plugin over another
pipe before any student code ran, so a line written by student code is rejected. A test that
runs past the per-test limit, or crashes the process, is recorded as such and pytest starts
again with the tests not yet run. When the run ends every descendant is killed (SIGKILL) and
reaped, and only then does the supervisor answer: nothing the student started survives to
touch the results.
"""

from __future__ import annotations

import ctypes
import hashlib
import hmac
import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

PR_SET_CHILD_SUBREAPER = 36
MAX_LINE = 200_000


def become_subreaper() -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _children() -> list[int]:
    me, found = os.getpid(), []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return found
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                fields = handle.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == me:
            found.append(int(entry))
    return found


def kill_everything(group: int) -> None:
    """SIGKILL the process group, then every process that became our child (orphans of the
    group, re-parented to us), until none is left; reap them all."""
    try:
        os.killpg(group, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    quiet_rounds = 0
    while quiet_rounds < 3:
        children = _children()
        for pid in children:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
        quiet_rounds = quiet_rounds + 1 if not children else 0
        time.sleep(0.01)


class Channel:
    """The plugin's signed lines: ``<seq> <hex hmac> <json>``."""

    def __init__(self, key: bytes):
        self.key, self.expected, self.buffer, self.forged = key, 0, b"", 0

    def feed(self, data: bytes) -> list[dict]:
        self.buffer += data
        events = []
        while b"\n" in self.buffer:
            line, self.buffer = self.buffer.split(b"\n", 1)
            event = self.verify(line)
            if event is None:
                self.forged += 1
            else:
                events.append(event)
        if len(self.buffer) > MAX_LINE:
            self.buffer, self.forged = b"", self.forged + 1
        return events

    def verify(self, line: bytes) -> dict | None:
        try:
            seq, mac, payload = line.split(b" ", 2)
            if int(seq) != self.expected:
                return None
            good = hmac.new(self.key, seq + b" " + payload, hashlib.sha256).hexdigest().encode()
            if not hmac.compare_digest(good, mac):
                return None
            self.expected += 1
            return json.loads(payload)
        except (ValueError, UnicodeDecodeError):
            return None


def run_once(job: dict, tests: list[str], deadline: float) -> dict:
    """One pytest process: the events it sent, how it ended, and the test it was in."""
    key = os.urandom(32)
    instructions_read, instructions_write = os.pipe()
    channel_read, channel_write = os.pipe()
    env = dict(job["env"], MT_GRADER_FDS=f"{instructions_read},{channel_write}")
    output = open(job["output"], "ab")
    limit = job.get("max_output_bytes", 20_000_000)

    def limits():  # in the child, before exec
        import resource

        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    process = subprocess.Popen(job["argv"], cwd=job["cwd"], env=env, stdin=subprocess.DEVNULL, stdout=output,
                               stderr=subprocess.STDOUT, pass_fds=(instructions_read, channel_write),
                               start_new_session=True, preexec_fn=limits)
    output.close()
    os.close(instructions_read)
    os.close(channel_write)
    with os.fdopen(instructions_write, "wb") as handle:
        try:
            handle.write(json.dumps({"key": key.hex(), "mode": job["mode"], "tests": tests}).encode())
        except BrokenPipeError:
            pass
    channel = Channel(key)
    events, state = [], {"current": None, "last": time.monotonic()}

    def take(data: bytes) -> None:
        for event in channel.feed(data):
            state["last"] = time.monotonic()
            events.append(event)
            if event.get("event") == "start":
                state["current"] = (event["nodeid"], state["last"])
            elif event.get("event") == "result":
                state["current"] = None

    ended = None
    while ended is None:
        now, current = time.monotonic(), state["current"]
        if current is not None and now - current[1] > job["per_test_timeout"]:
            ended = {"why": "timeout", "test": current[0]}
        elif current is None and now - state["last"] > job["startup_timeout"]:
            ended = {"why": "startup timeout"}
        elif now > deadline:
            ended = {"why": "time limit", "test": current[0] if current else None}
        elif select.select([channel_read], [], [], 0.2)[0]:
            data = os.read(channel_read, 65536)
            if not data:
                break  # every writer is gone
            take(data)
        elif process.poll() is not None:
            break  # pytest ended; a child it forked may still hold the pipe
    returncode = process.poll()
    kill_everything(process.pid)
    while True:  # every writer is dead now: read what is left, up to the end of the pipe
        data = os.read(channel_read, 65536)
        if not data:
            break
        take(data)
    os.close(channel_read)
    if ended is None and state["current"] is not None:
        ended = {"why": "crash", "test": state["current"][0], "returncode": returncode}
    return {"events": events, "ended": ended, "returncode": returncode, "forged": channel.forged}


def supervise(job: dict) -> dict:
    become_subreaper()
    Path(job["output"]).write_bytes(b"")
    deadline = time.monotonic() + job["total_timeout"]
    if job["mode"] == "collect":
        run = run_once(job, [], deadline)
        return {"runs": [run]}
    remaining, runs = list(job["tests"]), []
    while remaining:
        run = run_once(job, remaining, deadline)
        runs.append(run)
        done = {e["nodeid"] for e in run["events"] if e.get("event") == "result"}
        ended = run["ended"] or {}
        if ended.get("test"):
            done.add(ended["test"])
        progressed = bool(done & set(remaining))
        remaining = [t for t in remaining if t not in done]
        if not progressed or ended.get("why") in ("time limit", "startup timeout") or time.monotonic() > deadline:
            break
    return {"runs": runs}


def main() -> None:
    job = json.loads(sys.stdin.read())
    result = supervise(job)
    try:
        result["output_tail"] = Path(job["output"]).read_bytes()[-20_000:].decode("utf-8", "replace")
    except OSError:
        result["output_tail"] = ""
    sys.stdout.write(json.dumps(result))


if __name__ == "__main__":
    main()
