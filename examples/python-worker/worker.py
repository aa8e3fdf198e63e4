#!/usr/bin/env python3
"""A Switchyard worker in Python 3, standard library only (http.client, json, threading).

It speaks the worker protocol over HTTP (README, "Workers in any language"; the OpenAPI document
at /docs): it registers for one agent type in a pool, heartbeats with its health (which also
extends the leases it holds and hears of cancels), leases tasks in batches (long poll), runs each
on a thread, and reports the ends in batches. Killed at any moment it loses nothing: the leases it
held expire and the tasks run again elsewhere.

    python3 examples/python-worker/worker.py --type echo --pool py --concurrency 8

Environment: SWITCHYARD_URL (default http://127.0.0.1:3000), SWITCHYARD_API_KEY (a key with the
`agent` scope). Handlers below: echo, transform, flaky (FLAKY_LEDGER: the fault tests' ledger).
"""
import argparse
import hashlib
import http.client
import json
import os
import queue
import random
import signal
import sys
import threading
import time
import urllib.parse


class Fatal(Exception):
    """Raise from a handler for a failure no retry can fix: the task is dead at once."""


class RetryAfter(Exception):
    """Raise from a handler when a downstream says "later": retried after `ms`, the pool held meanwhile."""

    def __init__(self, ms, message="retry later"):
        super().__init__(message)
        self.ms = int(ms)


# ---- handlers: payload (dict) and the lease -> result (must match the type's result schema) ----

def echo(payload, lease):
    return {"echoed": payload}


def transform(payload, lease):
    text = payload["text"]
    ops = {"upper": str.upper, "lower": str.lower, "reverse": lambda s: s[::-1], "trim": str.strip, "words": lambda s: s}
    for op in payload.get("ops", []):
        text = ops[op](text)
    result = {"text": text}
    if "words" in payload.get("ops", []):
        result["words"] = len(text.split())
    rounds = payload.get("rounds", 0)
    if rounds > 0:
        digest = text.encode()
        for _ in range(rounds):
            digest = hashlib.sha256(digest).digest()
        result["digest"] = digest.hex()
    return result


LEDGER = os.environ.get("FLAKY_LEDGER")
LEDGER_LOCK = threading.Lock()


def ledger(lease, ev):
    if LEDGER:
        line = json.dumps({"id": lease["task"], "attempt": lease["attempt"], "pid": os.getpid(), "ev": ev, "t": int(time.time() * 1000)})
        with LEDGER_LOCK, open(LEDGER, "a") as f:
            f.write(line + "\n")


def flaky(payload, lease):
    started = time.time()
    ledger(lease, "start")
    delay = payload.get("latencyMs", 0) + random.uniform(-1, 1) * payload.get("jitterMs", 0)
    if delay > 0:
        time.sleep(delay / 1000)
    fail = lease["attempt"] <= payload.get("failUntilAttempt", 0) or random.random() < payload.get("failRate", 0)
    if fail:
        message = "flaky failure on attempt %d" % lease["attempt"]
        raise Fatal(message) if payload.get("fatal") else RuntimeError(message)
    ledger(lease, "end")
    return {"ok": True, "attempt": lease["attempt"], "tookMs": int((time.time() - started) * 1000)}


HANDLERS = {"echo": echo, "transform": transform, "flaky": flaky}


# ---- the protocol ----

class Api:
    """JSON over HTTP/1.1 keep-alive: one connection per thread (http.client is not thread-safe)."""

    def __init__(self, url, key):
        u = urllib.parse.urlsplit(url)
        self.host, self.port = u.hostname, u.port or 80
        self.headers = {"content-type": "application/json"}
        if key:
            self.headers["authorization"] = "Bearer " + key
        self.local = threading.local()

    def call(self, method, path, body=None, timeout=10):
        for attempt in range(3):
            conn = getattr(self.local, "conn", None)
            if conn is None:
                conn = self.local.conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
            try:
                conn.timeout = timeout
                if conn.sock is not None:
                    conn.sock.settimeout(timeout)
                conn.request(method, path, None if body is None else json.dumps(body), self.headers)
                res = conn.getresponse()
                text = res.read()
                if res.status == 503 and attempt < 2:  # Redis unreachable for a moment: every call here is safe to repeat
                    time.sleep(0.2 * 2 ** attempt)
                    continue
                return res.status, (json.loads(text) if text else None)
            except (OSError, http.client.HTTPException):
                conn.close()
                self.local.conn = None
                if attempt == 2:
                    raise
                time.sleep(0.2 * 2 ** attempt)
        raise RuntimeError("unreachable")


class Worker:
    def __init__(self, api, args):
        self.api, self.args = api, args
        self.handler = HANDLERS[args.type]
        self.held = {}  # task id -> lease, while it runs
        self.held_lock = threading.Lock()
        self.todo = queue.Queue()
        self.done = queue.Queue()
        self.quit = threading.Event()  # SIGTERM: lease no more
        self.stopping = threading.Event()  # the end: heartbeats stop
        self.draining = False
        self.id = None

    def register(self):
        status, body = self.api.call("POST", "/v1/workers", {
            "type": self.args.type, "pool": self.args.pool, "weight": self.args.weight,
            "concurrency": self.args.concurrency, "host": os.uname().nodename, "tags": ["python"],
        })
        if status != 201:
            sys.exit("could not register: %s %s" % (status, body))
        self.id, self.heartbeat_ms = body["id"], body["heartbeatMs"]
        self.beat()  # HEALTHY from the start: no task until then
        print("registered %s (pool %s, weight %s, concurrency %d)" % (self.id, self.args.pool, self.args.weight, self.args.concurrency), flush=True)

    def beat(self):
        with self.held_lock:
            leases = [{"task": l["task"], "lease": l["lease"]} for l in self.held.values()]
        status, body = self.api.call("POST", "/v1/workers/%s/heartbeat" % self.id, {"health": "HEALTHY", "running": len(leases), "leases": leases})
        if status == 404:  # our registration lapsed (a long pause): register again; held leases stay ours
            self.register()
            return
        if status != 200:
            return
        self.draining = body["draining"]
        for l in body["leases"]:
            if l["state"] != "extended":  # lost, cancelled or timed out: its end is not ours to report
                with self.held_lock:
                    self.held.pop(l["task"], None)

    def heartbeats(self):
        while not self.stopping.wait(self.heartbeat_ms / 1000):
            try:
                self.beat()
            except Exception as e:  # noqa: BLE001 - keep beating whatever happened
                print("heartbeat failed: %s" % e, file=sys.stderr, flush=True)

    def leases(self):
        while not self.quit.is_set() and not self.draining:
            with self.held_lock:
                free = self.args.concurrency - len(self.held)
            if free <= 0:
                time.sleep(0.001)
                continue
            try:
                status, body = self.api.call("POST", "/v1/workers/%s/leases" % self.id, {"max": min(free, self.args.batch), "waitMs": 1000}, timeout=15)
            except OSError:
                time.sleep(0.5)
                continue
            if status != 200 or not body["leases"]:
                if status == 200 and body.get("paused"):
                    time.sleep(0.2)
                continue
            with self.held_lock:
                for l in body["leases"]:
                    l["received"] = time.monotonic()
                    self.held[l["task"]] = l
            for l in body["leases"]:
                self.todo.put(l)

    def runner(self):
        while True:
            lease = self.todo.get()
            if lease is None:
                return
            ref = {"task": lease["task"], "lease": lease["lease"]}
            try:
                result = self.handler(lease["payload"], lease)
                self.done.put(dict(ref, status="completed", result=result))
            except Fatal as e:
                self.done.put(dict(ref, status="failed", error=str(e), retry="fatal"))
            except RetryAfter as e:
                self.done.put(dict(ref, status="failed", error=str(e), retryAfterMs=e.ms))
            except Exception as e:  # noqa: BLE001 - a handler's error fails the attempt, never the worker
                self.done.put(dict(ref, status="failed", error="%s: %s" % (type(e).__name__, e)))

    def reporter(self):
        """Sends ends as they come: one right away when idle, and what finished meanwhile together in the next request."""
        while True:
            first = self.done.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < 500:
                try:
                    item = self.done.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self.done.put(None)
                    break
                batch.append(item)
            with self.held_lock:
                batch = [r for r in batch if r["task"] in self.held]  # a lease lost meanwhile is not ours to report
            if batch:
                self.report(batch)
            with self.held_lock:
                for r in batch:
                    self.held.pop(r["task"], None)

    def report(self, batch):
        for attempt in range(5):
            try:
                status, body = self.api.call("POST", "/v1/workers/%s/results" % self.id, {"results": batch})
                if status in (200, 409):
                    return
            except OSError:
                pass
            time.sleep(0.1 * 2 ** attempt)
        print("could not report %d results; their leases expire and the tasks run again" % len(batch), file=sys.stderr, flush=True)

    def run(self):
        self.register()
        threads = [threading.Thread(target=self.runner, daemon=True) for _ in range(self.args.concurrency)]
        threads.append(threading.Thread(target=self.reporter, daemon=True))
        beating = threading.Thread(target=self.heartbeats, daemon=True)
        for t in threads + [beating]:
            t.start()
        self.leases()
        # Stopping (SIGTERM, or drained): no new leases; what is held finishes and is reported.
        print("stopping: finishing %d held tasks" % len(self.held), flush=True)
        deadline = time.monotonic() + self.args.grace
        while self.held and time.monotonic() < deadline:
            time.sleep(0.05)
        for _ in range(self.args.concurrency):
            self.todo.put(None)
        self.done.put(None)
        for t in threads:
            t.join(timeout=2)
        self.stopping.set()
        self.api.call("DELETE", "/v1/workers/%s" % self.id)
        print("stopped", flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--type", required=True, choices=sorted(HANDLERS))
    p.add_argument("--pool", default="default")
    p.add_argument("--weight", type=float, default=1)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--batch", type=int, default=100, help="lease up to this many tasks per request")
    p.add_argument("--grace", type=float, default=10, help="seconds held tasks get to finish on SIGTERM")
    args = p.parse_args()
    worker = Worker(Api(os.environ.get("SWITCHYARD_URL", "http://127.0.0.1:3000"), os.environ.get("SWITCHYARD_API_KEY")), args)
    signal.signal(signal.SIGTERM, lambda *_: worker.quit.set())
    signal.signal(signal.SIGINT, lambda *_: worker.quit.set())
    worker.run()


if __name__ == "__main__":
    main()
