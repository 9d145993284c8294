#!/usr/bin/env python3
"""The README, run as a newcomer would run it, against one `make run` stack.

Starts scripts/run.sh (debug binaries by default, ports of its own, a
temporary DATA and RUN_STATE), then runs the README's code blocks marked
`<!-- readme-test: NAME -->` exactly as written (only the addresses
127.0.0.1:8080 and 127.0.0.1:9100 point at this stack's ports):

  api-walk            twice: a second paste must work like the first;
  admin               the breaker API with make run's demo admin token;
  protection-kill     the comment service is SIGKILLed: the article list
                      stays 200 and "degraded", its breaker opens, make run
                      reports the death and keeps serving;
  protection-restart  the documented restart command: the list loses its
                      "degraded" again;

then stops the stack with SIGINT (what Ctrl-C sends): exit status 0 and no
WARN or ERROR line after the signal. `make test` runs it (scripts/test.sh).

Knobs: BIN (target/debug), KEEP=1 keeps the temporary directory. Ports:
the first free set of gateway 18380, admin 19380…, gRPC 50451…, etcd
22779… (then +10, +20, …), away from make run's, make loadtest's and
make bench's, so a developer's make run or a second checkout's test does
not collide.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("BIN", "target/debug")


def free_ports():
    """(gateway, admin, first gRPC, etcd): the first set whose every port
    (services' admin and gRPC ports, etcd's peer port) is free."""
    for offset in range(0, 200, 10):
        ports = (18380 + offset, 19380 + offset, 50451 + offset, 22779 + offset)
        wanted = [ports[0], ports[3], ports[3] + 1]
        wanted += [ports[1] + i for i in range(4)] + [ports[2] + i for i in range(3)]
        if all(port_free(p) for p in wanted):
            return ports
    return ports


def port_free(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


PORT, ADMIN_PORT, GRPC_PORT, ETCD_PORT = free_ports()
BASE = f"http://127.0.0.1:{PORT}"
ADMIN = f"http://127.0.0.1:{ADMIN_PORT}"
# make run's demo admin token (gateway/config/local.yaml).
ADMIN_TOKEN = "newsroom-demo-admin"
COUNT_COMMENTS = "comment.v1.CommentService/CountComments"
# The whole test, start-up of a debug build included, stays under this.
DEADLINE = time.monotonic() + 900

passed = 0
failed = 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"  ok    {name}")
    else:
        failed += 1
        print(f"  FAIL  {name}")
        if detail:
            print("        " + detail.strip().replace("\n", "\n        "))
    return ok


def note(text):
    print(f"  note  {text}")


def remaining(limit):
    return max(1.0, min(limit, DEADLINE - time.monotonic()))


def http(url, token=None, timeout=5):
    """(status, body as text); status 0 when nothing answered."""
    request = urllib.request.Request(url)
    if token:
        request.add_header("authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")
    except (urllib.error.URLError, OSError) as e:
        return 0, str(e)


def degraded(body):
    try:
        return json.loads(body).get("degraded", [])
    except ValueError:
        return None


def readme_blocks():
    text = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    blocks = {}
    for m in re.finditer(r"<!-- readme-test: (\S+) -->\s*\n```sh\n(.*?)\n```", text, re.S):
        blocks[m.group(1)] = m.group(2)
    return blocks


def for_this_stack(block):
    return block.replace("127.0.0.1:8080", f"127.0.0.1:{PORT}").replace(
        "127.0.0.1:9100", f"127.0.0.1:{ADMIN_PORT}"
    )


def run_block(label, block, env):
    """Runs a README block in a fresh bash that stops at the first failing
    command (set -e; pipefail so a failing curl inside a pipe counts)."""
    try:
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", for_this_stack(block)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=remaining(180),
        )
    except subprocess.TimeoutExpired:
        check(label, False, "did not finish within its time limit")
        return None
    check(
        label,
        done.returncode == 0 and not done.stderr.strip(),
        f"exit status {done.returncode}\nstderr: {done.stderr[-2000:]}\nstdout: {done.stdout[-1000:]}",
    )
    return done.stdout


class Stack:
    def __init__(self, tmp):
        self.log_path = os.path.join(tmp, "run.log")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("APP_")}
        self.env.update(
            BIN=BIN,
            PORT=str(PORT),
            ADMIN_PORT=str(ADMIN_PORT),
            GRPC_PORT=str(GRPC_PORT),
            ETCD_PORT=str(ETCD_PORT),
            DATA=os.path.join(tmp, "data"),
            RUN_STATE=os.path.join(tmp, "state"),
        )
        self.log = open(self.log_path, "wb")
        # A session of its own: the signals it gets are the ones this test sends.
        self.proc = subprocess.Popen(
            ["scripts/run.sh"],
            cwd=ROOT,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def text(self):
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def wait_for_log(self, needle, limit):
        end = time.monotonic() + remaining(limit)
        while time.monotonic() < end:
            if needle in self.text():
                return True
            if self.proc.poll() is not None:
                return needle in self.text()
            time.sleep(0.2)
        return False

    def pids(self):
        state = self.env["RUN_STATE"]
        found = {}
        for name in ("etcd", "user", "content", "comment", "gateway"):
            try:
                found[name] = int(open(os.path.join(state, f"{name}.pid")).read())
            except (OSError, ValueError):
                pass
        return found

    def cleanup(self):
        if self.proc.poll() is None:
            subprocess.run(
                ["scripts/run.sh", "stop"], cwd=ROOT, env=self.env, timeout=90, capture_output=True
            )
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        # Whatever survived make run (it was SIGKILLed, say).
        subprocess.run(["scripts/run.sh", "stop"], cwd=ROOT, env=self.env, timeout=90, capture_output=True)
        self.log.close()


def alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def main():
    os.chdir(ROOT)
    for binary in ("gateway", "user", "content", "comment"):
        if not os.access(os.path.join(BIN, binary), os.X_OK):
            print(f"building the binaries ({BIN}/{binary} is missing)")
            subprocess.run(["cargo", "build", "--workspace", "--bins"], check=True)
            break
    blocks = readme_blocks()
    for name in ("api-walk", "admin", "protection-kill", "protection-restart"):
        if not check(f"README has the block <!-- readme-test: {name} -->", name in blocks):
            return

    tmp = tempfile.mkdtemp(prefix="newsroom-readme-test.")
    stack = Stack(tmp)
    keep = os.environ.get("KEEP") == "1"
    try:
        scenario(stack, blocks)
    finally:
        stack.cleanup()
        if failed:
            print(f"\n  the stack's log ({stack.log_path}), last lines:")
            for line in stack.text().splitlines()[-40:]:
                print("    " + line[:300])
            keep = True
        if keep:
            print(f"  kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def scenario(stack, blocks):
    if not check("make run starts and prints its banner", stack.wait_for_log("newsroom is running", 300)):
        return
    banner = stack.text()
    check(
        "the banner lists the dashboard, the API page, the demo login and the admin token",
        all(
            s in banner
            for s in (f"{ADMIN}/admin/dashboard", f"{BASE}/docs", "newsroom-demo", ADMIN_TOKEN)
        ),
    )
    check("no colour codes in a redirected log", "\x1b[" not in banner)

    for run in (1, 2):
        out = run_block(f"README api-walk, paste {run}", blocks["api-walk"], stack.env)
        if out is not None:
            check(f"api-walk {run}: the comment went to the article just published", '"Rates hold"' in out)

    out = run_block("README admin example", blocks["admin"], stack.env)
    if out is not None:
        check("admin example: forcing the breaker open degrades the list", '"degraded":["comments"]' in out)
    status, body = http(f"{BASE}/api/v1/articles?limit=5")
    check("after the admin example the list is whole again", status == 200 and not degraded(body), body[:300])

    before = stack.pids()
    out = run_block("README protection walk: kill the comment service", blocks["protection-kill"], stack.env)
    check(
        "the comment service is dead",
        "comment" in before and not alive(before["comment"]),
    )
    # The list stays 200 + degraded while the dead instance's lease expires
    # (≈ 10 s) and after; the gateway stays ready all along (comment is an
    # optional backend: README, Readiness).
    lists, whole_and_200, readyz = 0, 0, []
    end = time.monotonic() + remaining(15)
    while time.monotonic() < end:
        status, body = http(f"{BASE}/api/v1/articles?limit=5")
        lists += 1
        if status == 200 and "comments" in (degraded(body) or []):
            whole_and_200 += 1
        r_status, r_body = http(f"{BASE}/readyz")
        readyz.append(r_status)
        try:
            if json.loads(r_body).get("instances", {}).get("comment") == 0:
                break
        except ValueError:
            pass
        time.sleep(0.5)
    check(
        f'the list answers 200 with "degraded" containing "comments" ({whole_and_200} of {lists})',
        lists > 0 and whole_and_200 == lists,
    )
    check(
        f"/readyz stays 200 while comment is dead ({readyz.count(200)} of {len(readyz)})",
        readyz and all(code == 200 for code in readyz),
        f"last body {r_body[:200]}",
    )
    status, body = http(f"{ADMIN}/admin/breakers", token=ADMIN_TOKEN)
    try:
        state = next(b["state"] for b in json.loads(body) if b["name"] == COUNT_COMMENTS)
    except (ValueError, StopIteration, KeyError, TypeError):
        state = f"unknown ({status} {body[:200]})"
    check(f"the breaker {COUNT_COMMENTS} is open", state == "open", f"state: {state}")
    stack.wait_for_log("make restart NAME=comment", 5)
    log = stack.text()
    check(
        "make run reported the death once, with the restart command, and kept running",
        log.count("comment killed by SIGKILL") == 1
        and "scripts/run.sh restart comment" in log
        and stack.proc.poll() is None,
        log[-1500:],
    )
    others = {k: v for k, v in stack.pids().items() if k != "comment"}
    check("the other processes keep running", all(alive(p) for p in others.values()), str(others))

    run_block("README protection walk: restart the comment service", blocks["protection-restart"], stack.env)
    end = time.monotonic() + remaining(30)
    whole = False
    while time.monotonic() < end and not whole:
        status, body = http(f"{BASE}/api/v1/articles?limit=5")
        whole = status == 200 and degraded(body) == []
        time.sleep(0.5)
    check('after the restart the list is whole again (no "degraded")', whole, body[:300])

    pids = stack.pids()
    offset = len(stack.text())
    os.killpg(stack.proc.pid, signal.SIGINT)
    try:
        code = stack.proc.wait(timeout=remaining(60))
    except subprocess.TimeoutExpired:
        code = None
    check("SIGINT stops make run with exit status 0", code == 0, f"exit status {code}")
    tail = stack.text()[offset:]
    bad = [l for l in tail.splitlines() if re.search(r"\b(WARN|ERROR)\b", l)]
    check("no WARN or ERROR line on the way down", not bad, "\n".join(bad[:10]))
    check("every process has exited", not any(alive(p) for p in pids.values()), str(pids))
    check("the stack said it stopped", "==> stopped" in tail, tail[-800:])


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        main()
    except KeyboardInterrupt:
        check("not interrupted", False)
    print(f"\nreadme test: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)
