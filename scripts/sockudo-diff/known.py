"""Known differences between Herald and sockudo 5.2.0, by scenario name: (kind, why).

kind is "deliberate" (Herald follows the Pusher docs / pusher-js where sockudo deviates),
"not yet in Herald" (a feature Herald lacks at the commit run; none since sign-in landed), or "sockudo quirk" (the docs leave
the detail open; Herald keeps its own answer). RESULT.md gives the full reasoning; keep the two
in step. A difference in a listed scenario is reported with its reason, whatever it is, so
read the transcript when a listed scenario's diff grows.
"""

AUTH = ("deliberate", "a refused subscription gets pusher:subscription_error {type, error, "
        "status} on the channel (soketi's shape, re-emitted by pusher-js on the channel); "
        "sockudo sends a connection-level pusher:error 4009 (or 4300) that pusher-js does not "
        "route to the channel, which then stays pending")

KNOWN = {
    "subscribe: private with good, wrong, foreign-socket and missing auth": AUTH,
    "subscribe: private-encrypted good and bad auth, payload relayed untouched": AUTH,
    "subscribe: presence good, bad signature, channel_data without user_id": AUTH,
    "presence: numeric user_id and user_info in member_added": (
        "deliberate", "a numeric user_id is accepted and used in string form (the Pusher "
        "auth-signature docs' own example has \"user_id\":10); sockudo refuses it with 4300"),
    "client events: presence channel carries user_id": (
        "deliberate", "the protocol docs add user_id to client events on presence channels "
        "(pusher-js metadata.user_id); sockudo omits it"),
    "client events: refused on public, encrypted and unsubscribed channels": (
        "deliberate", "client events on private-encrypted- channels are refused with 4301 "
        "(the docs: not supported there, the SDKs cannot encrypt them); sockudo relays them"),
    "client events: 11 in one second (limit 10)": (
        "sockudo quirk", "both refuse the 11th with pusher:error 4301 and close 4301 "
        "(sockudo with terminate_on_limit); sockudo sends the pusher:error twice"),
    "HTTP signatures: wrong, missing, wrong key, wrong body_md5, body_md5 on GET": (
        "deliberate", "body_md5 of the empty body on a GET is accepted (the PyPI SDK sends "
        "it; sockudo 401 breaks that SDK's channel queries); auth_version other than 1.0 is "
        "refused 401 (sockudo accepts it); an unknown auth_key is 401 (a signature problem), "
        "sockudo 404"),
    "HTTP bad bodies: not JSON, no name, no data, no channel, bad channel name": (
        "deliberate", "an event without data is refused 400 (the REST API docs: data is "
        "required), sockudo publishes it; batch_events with a non-object body is 400 like "
        "every other bad body (sockudo 422); an empty batch is 400 (nothing to do is a client "
        "error), sockudo 200"),
    "unknown app: websocket key, HTTP app id, unknown endpoint": (
        "deliberate", "an unknown key gets pusher:error 4001 and close 4001 (protocol docs; "
        "pusher-js then stops retrying); sockudo drops the TCP connection (1006, retried "
        "forever); an unknown app id is 404 (soketi), sockudo 401"),
    "bad channel names: spaces, 165 chars, 164 chars, '#' names, colon": (
        "deliberate", "a bad name gets pusher:subscription_error status 400 on the channel "
        "(sockudo: pusher:error 4300); '#' names are reserved for #server-to-user- channels "
        "of a signed-in user and refused (4009 for someone else's, 400 for other # names; sockudo "
        "lets anyone subscribe to any '#' channel)"),
    "bad frames: not JSON, array, no event, no channel, binary; socket stays": (
        "sockudo quirk", "both answer pusher:error and keep the socket; the code is 4200 "
        "(Herald) or 4000 (sockudo), the docs name none for this"),
    "protocol versions: 7, 6 (pysher), 99, none, not a number": (
        "deliberate", "protocols outside 5-7 are refused with 4007 and a missing one with "
        "4008 as the protocol docs list them (sockudo accepts any, and answers 400 to a "
        "non-numeric one before the upgrade)"),
    "HTTP channels: info=subscription_count on the list, info=cache on a cache channel": (
        "deliberate", "the channel list takes only user_count (the REST reference's list for "
        "GET /channels; sockudo also counts subscriptions there); info=cache gives the cached "
        "event's data and the seconds left of Pusher's 30 minutes (sockudo: the whole event "
        "JSON as data, and its own 300 s memory-cache ttl)"),
    "presence: user_id of 129 bytes, channel_data over 1 KB, 101st member": (
        "deliberate", "a user_id over 128 characters is refused (presence docs' limit; "
        "sockudo takes it); both refuse the 1 KB+ member and the 101st user, Herald on the "
        "channel (subscription_error 400 / 4100), sockudo with pusher:error 4300 / 4100"),
    "sign-in: pusher:signin good, then bad signature": (
        "deliberate", "a bad sign-in signature gets pusher:error 4009 and close 4009 (the "
        "user-authentication docs); sockudo sends the error and keeps the socket"),
    "server-to-user: #server-to-user-<id> after sign-in, HTTP event to it": (
        "deliberate", "only the socket signed in as <id> may subscribe to "
        "#server-to-user-<id> (others: subscription_error 4009); sockudo lets any socket "
        "subscribe and receive another user's events"),
    "watchlist: online when a watched user signs in, offline when it leaves": (
        "deliberate", "pusher_internal:watchlist_events {events:[{name, user_ids}]} when a "
        "watched user comes online and goes offline (what pusher-js's watchlist reads); "
        "sockudo sends a bare \"offline\" event at sign-in and nothing later"),
    "sign-in: a second identity on one socket, the same one again": (
        "deliberate", "a connection signs in as one user only (user-authentication docs): "
        "another identity gets pusher:error 4009, the socket stays; sockudo re-signs it"),
}
