# SPDX-License-Identifier: Apache-2.0
"""Process 1 of the lab instance's PID namespace: starts the agent stand-ins and keeps them.

Run as `python3 lab.py _instance SPEC.json` under `unshare --pid --fork --mount-proc`, so that
ssm-doctor, entering the same PID namespace, sees in /proc only this lab's agent processes (labs
running side by side would otherwise see each other's). When this process ends, the kernel
kills every process of the namespace: that is the stand-ins' cleanup.

SPEC: {"processes": [{"exe": path, "args": [...], "env": {...}}], "ready_timeout": seconds}.
Prints "ready" once every stand-in has said "ready", or "failed: <why>" and exits 1.
"""

import json
import os
import select
import signal
import subprocess
import sys
import time


def start_all(spec):
    children = []
    for entry in spec["processes"]:
        env = dict(os.environ, **entry.get("env", {}))
        child = subprocess.Popen([entry["exe"]] + entry["args"], stdout=subprocess.PIPE,
                                 stderr=sys.stderr, stdin=subprocess.DEVNULL, env=env)
        children.append((entry, child))
    deadline = time.monotonic() + spec.get("ready_timeout", 10)
    waiting = {child.stdout.fileno(): (entry, child) for entry, child in children}
    while waiting:
        left = deadline - time.monotonic()
        if left <= 0:
            names = ", ".join(os.path.basename(e["exe"]) for e, _ in waiting.values())
            return "no ready from %s within %ss" % (names, spec.get("ready_timeout", 10))
        readable, _, _ = select.select(list(waiting), [], [], left)
        for fd in readable:
            entry, child = waiting.pop(fd)
            line = child.stdout.readline().decode(errors="replace").strip()
            if line != "ready":
                child.wait(timeout=5)
                return "%s %s exited with status %s" % (
                    os.path.basename(entry["exe"]), " ".join(entry["args"]), child.returncode)
    return None


def main(spec_path):
    # As PID 1 this process gets no signal it has no handler for, not even from outside.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
    with open(spec_path) as f:
        spec = json.load(f)
    problem = start_all(spec)
    if problem:
        print("failed: " + problem, flush=True)
        return 1
    print("ready", flush=True)
    # Reap whatever ends (ssm-doctor runs in here too, started through nsenter).
    while True:
        try:
            os.wait()
        except ChildProcessError:
            signal.pause()
