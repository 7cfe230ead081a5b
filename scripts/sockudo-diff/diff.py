"""Run every scenario of scenarios.py against Herald and sockudo and compare the transcripts.

    python diff.py --herald http://127.0.0.1:P1 --sockudo http://127.0.0.1:P2 [--report FILE]
                   [--only SUBSTRING] [-v] [--exact-shapes]

Prints one line per scenario (same / different, with the known reason when the difference is
listed in known.py) and, for each difference, both transcripts side by side as a unified diff.
Exit status: 0 when every difference is a known one, 1 otherwise.
"""

import argparse
import datetime
import difflib
import sys

import wire
from known import KNOWN
from scenarios import SCENARIOS, Ctx


def run(base, i, f):
    c = Ctx(base, f"d{i}")
    try:
        f(c)
    except Exception as e:  # a scenario that crashes is reported, not fatal to the run
        c.log.append(f"SCENARIO ERROR {type(e).__name__}: {e}")
    finally:
        c.close_all()
    return c.log


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--herald", required=True)
    ap.add_argument("--sockudo", required=True)
    ap.add_argument("--report")
    ap.add_argument("--only")
    ap.add_argument("--commits", default="")
    ap.add_argument("-v", action="store_true", help="print every transcript")
    ap.add_argument("--exact-shapes", action="store_true", help="no cosmetic normalisation")
    a = ap.parse_args()
    wire.COSMETIC = not a.exact_shapes
    rows, unknown = [], 0
    for i, (name, f) in enumerate(SCENARIOS, 1):
        if a.only and a.only not in name:
            continue
        h, s = run(a.herald, i, f), run(a.sockudo, i, f)
        same = h == s
        known = KNOWN.get(name)
        if same:
            verdict = "same"
        elif known:
            verdict = f"different ({known[0]})"
        else:
            verdict = "DIFFERENT (unexplained)"
            unknown += 1
        print(f"[{i:2}] {verdict:<40} {name}")
        if not same or a.v:
            diff = difflib.unified_diff(s, h, "sockudo", "herald", n=2, lineterm="")
            body = list(diff) if not same else [f"  {x}" for x in h]
            for line in body:
                print(f"       {line}")
            if known:
                print(f"       why: {known[1]}")
        rows.append((i, name, verdict, s, h, known))
    if a.report:
        write_report(a.report, rows, a.commits)
    total = len(rows)
    n_same = sum(1 for r in rows if r[2] == "same")
    print(f"\n{n_same} same, {total - n_same} different ({unknown} unexplained) of {total}")
    return 1 if unknown else 0


def write_report(path, rows, commits):
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    out = [f"Run {now}; {commits}", "", "| # | scenario | result |", "|---|---|---|"]
    for i, name, verdict, *_ in rows:
        out.append(f"| {i} | {name} | {verdict} |")
    out += ["", "Transcripts of the differences (`-` sockudo, `+` herald):", ""]
    for i, name, verdict, s, h, known in rows:
        if verdict == "same":
            continue
        out += [f"### {i}. {name}", "", "```diff"]
        out += list(difflib.unified_diff(s, h, "sockudo", "herald", n=1, lineterm=""))
        out += ["```", ""]
    with open(path, "w") as fh:
        fh.write("\n".join(out) + "\n")


if __name__ == "__main__":
    sys.exit(main())
