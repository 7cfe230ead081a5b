"""The differential suite's library; ``tests/diff/runner.py`` is the entry point.

Layout: ``signing`` (the itsdangerous-compatible signer and token forgeries), ``client`` (body
parsing, the recording websocket client, the ``Recorder`` every scenario drives), ``normalise``
(transcript normalisation and rendering), ``helpers`` (shared by scenarios) and the scenarios by
concern: ``scenarios_auth``, ``scenarios_connect``, ``scenarios_messages``,
``scenarios_transport``, ``scenarios_timers``, ``scenarios_lifetime``, ``scenarios_wire``
(status lines, headers, error pages). Every ``scenario_xxx(t)`` function in those modules is
registered by name.
"""

from . import (scenarios_auth, scenarios_connect, scenarios_lifetime, scenarios_messages,
               scenarios_timers, scenarios_transport, scenarios_wire)

SCENARIO_MODULES = (scenarios_auth, scenarios_connect, scenarios_messages, scenarios_transport,
                    scenarios_timers, scenarios_lifetime, scenarios_wire)
