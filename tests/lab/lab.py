#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The ssm-doctor lab's command line: list scenarios, run one, test one, or keep one up.

  lab.py list [--names]
  lab.py run [SCENARIO] --binary PATH [--standin PATH] [--output table|json] [--keep]
  lab.py test SCENARIO --binary PATH [--standin PATH]
  lab.py shell [SCENARIO] [--standin PATH]
  lab.py selftest [SCENARIO...] --standin PATH

Needs root (network namespaces). Not being root, or missing a tool, ends with status 77 (ctest
reports a skip) unless SSM_DOCTOR_LAB_REQUIRED=1 is set, which makes it a failure (status 1).
"""

import argparse
import json
import os
import shutil
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # keep the source tree clean when run from it

from labkit import expect, scenarios  # noqa: E402

SKIP = 77
TOOLS = ["ip", "nft", "dnsmasq", "openssl", "unshare", "nsenter", "ss"]


def cannot_run(reason):
    if os.environ.get("SSM_DOCTOR_LAB_REQUIRED") == "1":
        print("lab: cannot run (SSM_DOCTOR_LAB_REQUIRED=1): %s" % reason, file=sys.stderr)
        return 1
    print("lab: skipped: %s" % reason, file=sys.stderr)
    return SKIP


def preflight():
    """None when the lab can run here, else the exit status after saying why not."""
    if os.geteuid() != 0:
        return cannot_run("the lab needs root for network namespaces (running as uid %d)"
                          % os.geteuid())
    path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    missing = [t for t in TOOLS if shutil.which(t, path=path) is None]
    if missing:
        return cannot_run("missing tools: %s (Debian: iproute2 nftables dnsmasq-base openssl "
                          "util-linux)" % " ".join(missing))
    os.environ["PATH"] = path
    return None


def on_signal(signum, _frame):
    # Turned into an exception so that every `with Lab(...)` block tears its lab down.
    raise SystemExit(128 + signum)


def scenario_named(name):
    found = scenarios.BY_NAME.get(name)
    if found is None:
        print("lab: no scenario %r; `lab.py list` names them" % name, file=sys.stderr)
        sys.exit(2)
    return found


def default_standin(binary):
    """The stand-in built next to the binary (<build>/tests/lab_agent_standin)."""
    if binary:
        candidate = os.path.join(os.path.dirname(os.path.abspath(binary)), "tests",
                                 "lab_agent_standin")
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def cmd_list(args):
    for s in scenarios.SCENARIOS:
        if args.names:
            print(s.name)
        else:
            mark = " (default)" if s.name == scenarios.DEFAULT else ""
            print("%-30s %s%s" % (s.name, s.description, mark))
    return 0


def open_lab(args, scenario):
    from labkit.lab import Lab
    standin = args.standin or default_standin(getattr(args, "binary", None))
    return Lab(scenario, standin=standin, keep_dir=getattr(args, "keep", False),
               verbose=getattr(args, "verbose", False))


def cmd_run(args):
    scenario = scenario_named(args.scenario)
    with open_lab(args, scenario) as lab:
        if args.verbose:
            print(lab.describe(), file=sys.stderr)
        result = lab.run_doctor(os.path.abspath(args.binary), ["--output", args.output])
        sys.stdout.write(result.stdout)
        sys.stderr.write(result.stderr)
        if args.keep:
            print("lab: files kept in %s" % lab.dir, file=sys.stderr)
        return result.returncode


def cmd_test(args):
    scenario = scenario_named(args.scenario)
    with open_lab(args, scenario) as lab:
        result = lab.run_doctor(os.path.abspath(args.binary), ["--output", "json"])
        try:
            report = json.loads(result.stdout)
        except json.JSONDecodeError as e:
            print("FAIL %s: the output is not JSON (%s); exit code %d\nstdout:\n%s\nstderr:\n%s"
                  % (scenario.name, e, result.returncode, result.stdout, result.stderr))
            return 1
        problems = expect.compare(scenario.expect, report, result.returncode, result.elapsed)
        if problems:
            print("FAIL %s (%s)" % (scenario.name, scenario.description))
            for p in problems:
                print("  - " + p)
            print("what ssm-doctor said (exit %d, %.2f s):" % (result.returncode,
                                                               result.elapsed))
            print(expect.summary(report))
            print("the lab:\n" + lab.describe())
            if result.stderr.strip():
                print("stderr:\n" + result.stderr.rstrip())
            if args.verbose:
                print(json.dumps(report, indent=2))
            print("(-v prints the whole report; --keep keeps the lab's logs in %s)"
                  % lab.dir if not args.keep else "lab files kept in %s" % lab.dir)
            return 1
        print("PASS %s: verdict %s, exit %d, %.2f s" % (scenario.name, report.get("verdict"),
                                                        result.returncode, result.elapsed))
        if args.keep:
            print("lab files kept in %s" % lab.dir)
        return 0


def cmd_shell(args):
    scenario = scenario_named(args.scenario)
    with open_lab(args, scenario) as lab:
        print(lab.describe())
        print("\nrun a command inside the instance:\n  %s <command>"
              % " ".join(lab.instance_command([])))
        print("for example:\n  %s" % " ".join(lab.instance_command(
            ["curl", "-s", "--cacert", lab.pki.ca_file,
             "https://%s/" % lab.host_name("ssm")])))
        print("ssm-doctor configuration: %s" % lab.config_path)
        print("press Ctrl-C to remove the lab")
        sys.stdout.flush()
        while True:
            signal.pause()


def main(argv):
    if len(argv) >= 2 and argv[0] == "_serve":
        from labkit import servers
        return servers.main(argv[1])
    if len(argv) >= 3 and argv[0] == "_probe":
        from labkit import selftest
        return selftest.probe_main(argv[1:])
    if len(argv) >= 2 and argv[0] == "_instance":
        from labkit import instance
        return instance.main(argv[1])

    parser = argparse.ArgumentParser(prog="lab.py", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("list", help="print the scenarios")
    p.add_argument("--names", action="store_true", help="names only, one a line")
    for name, needs_binary in (("run", True), ("test", True), ("shell", False)):
        p = sub.add_parser(name)
        p.add_argument("scenario", nargs="?" if name != "test" else None,
                       default=scenarios.DEFAULT)
        p.add_argument("--binary", required=needs_binary, help="the ssm-doctor executable")
        p.add_argument("--standin", help="the agent stand-in (target lab_agent_standin)")
        p.add_argument("-v", "--verbose", action="store_true")
        if name == "run":
            p.add_argument("--output", choices=["table", "json"], default="table")
        if name != "shell":
            p.add_argument("--keep", action="store_true",
                           help="keep the lab's files (logs, certificates) after it ends")
    p = sub.add_parser("selftest", help="check the lab itself, without ssm-doctor")
    p.add_argument("scenarios", nargs="*", help="default: every fault and a few more")
    p.add_argument("--standin", required=True, help="the agent stand-in")
    args = parser.parse_args(argv)
    if args.command == "list":
        return cmd_list(args)

    refusal = preflight()
    if refusal is not None:
        return refusal
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, on_signal)
    # Also when started from a script that ignores SIGINT for background jobs.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    from labkit import LabError
    if args.command == "selftest":
        from labkit import selftest
        for name in args.scenarios:
            scenario_named(name)
        try:
            return selftest.main(args.standin, args.scenarios)
        except LabError as e:
            print("lab: %s" % e, file=sys.stderr)
            return 1
    try:
        return {"run": cmd_run, "test": cmd_test, "shell": cmd_shell}[args.command](args)
    except LabError as e:
        print("lab: %s" % e, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("lab: interrupted; the lab is removed", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
