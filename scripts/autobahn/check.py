#!/usr/bin/env python3
"""Check an Autobahn|Testsuite fuzzingclient report (reports/servers/index.json).

A case passes when both its `behavior` and its `behaviorClose` are OK, NON-STRICT or
INFORMATIONAL (anything else -- FAILED, UNIMPLEMENTED, WRONG CODE, ... -- is a failure).
Prints the count of each behaviour, every failing case, and last a line `N passed, M failed`.
Exit status: 0 all passed, 1 any failure (or no cases at all), 2 unreadable report.

    check.py [--agent NAME] path/to/index.json
"""
import argparse
import collections
import json
import sys

PASSING = {"OK", "NON-STRICT", "INFORMATIONAL"}


def case_key(case_id):
    """'9.10.2' sorts after '9.2.1': compare numerically, part by part."""
    return [int(p) if p.isdigit() else p for p in case_id.split(".")]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("index", help="reports/servers/index.json written by wstest -m fuzzingclient")
    ap.add_argument("--agent", help="check only this agent (default: every agent in the report)")
    args = ap.parse_args()

    try:
        with open(args.index, encoding="utf-8") as f:
            index = json.load(f)
    except (OSError, ValueError) as e:
        print("check.py: cannot read %s: %s" % (args.index, e), file=sys.stderr)
        return 2
    if args.agent is not None:
        if args.agent not in index:
            print("check.py: agent %r not in %s (have: %s)"
                  % (args.agent, args.index, ", ".join(sorted(index)) or "none"), file=sys.stderr)
            return 2
        index = {args.agent: index[args.agent]}

    passed = failed = 0
    for agent in sorted(index):
        cases = index[agent]
        behavior = collections.Counter(c.get("behavior") for c in cases.values())
        close = collections.Counter(c.get("behaviorClose") for c in cases.values())
        print("agent %s: %d cases" % (agent, len(cases)))
        print("  behavior:      " + ", ".join("%s %d" % kv for kv in sorted(behavior.items(), key=str)))
        print("  behaviorClose: " + ", ".join("%s %d" % kv for kv in sorted(close.items(), key=str)))
        for case_id in sorted(cases, key=case_key):
            c = cases[case_id]
            if c.get("behavior") in PASSING and c.get("behaviorClose") in PASSING:
                passed += 1
            else:
                failed += 1
                print("  FAILED %s: behavior %s, behaviorClose %s, close code %s (%s)"
                      % (case_id, c.get("behavior"), c.get("behaviorClose"),
                         c.get("remoteCloseCode"), c.get("reportfile")))
    if passed + failed == 0:
        print("check.py: the report has no cases", file=sys.stderr)
    print("%d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
