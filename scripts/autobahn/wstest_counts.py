"""Run wstest with fewer messages per case in 12.* and 13.* (permessage-deflate).

Autobahn|Testsuite's fuzzingclient spec can select cases ("cases", "exclude-cases",
"exclude-agent-cases") and set protocol options, but not a case's message count: 12.x.y and
13.x.y send the 1,000 messages hard-coded in case12_x_x.py's MSG_SIZES. This wrapper sets the
COUNT attribute of those case classes before handing over to wstest's own entry point, so every
one of the 216 deflate cases still runs (every payload size, fragment size and parameter set),
only with COUNT messages each. Used by run.sh in its default (CI) mode; --full runs wstest as is.

    python wstest_counts.py COUNT -m fuzzingclient -s spec.json
"""
import sys

count = int(sys.argv.pop(1))
if count < 1:
    sys.exit("wstest_counts.py: COUNT must be at least 1")

from autobahntestsuite import case  # noqa: E402
from autobahntestsuite.wstest import run  # noqa: E402

for c in case.Case12_X_X + case.Case13_X_X:
    c.COUNT = count

sys.exit(run())
