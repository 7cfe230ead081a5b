"""Normalisation of transcripts before A and B are compared: server uuids numbered in order of
appearance, server timestamps bucketed, the per-run name prefix and uptime masked; and the
rendering of a transcript as text lines.
"""

import datetime
import hashlib
import json
import re


UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


TS_RE = re.compile(r"(\d{4})-(\d{2})-(\d{2})T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?")


def _ts_sub(match):
    """Server-generated timestamps (near 'now') become <ts>, keeping the shape that matters to
    clients: fraction present or not, zone suffix.  Fixed client-supplied timestamps (years far
    from now, e.g. 2020-01-02T03:04:05Z) are kept verbatim: they must round-trip."""
    try:
        day = datetime.date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    except ValueError:
        return match.group(0)
    if abs((day - datetime.datetime.utcnow().date()).days) > 2:
        return match.group(0)
    frac = match.group(4)
    shape = "<ts>" if frac and len(frac) == 7 else ("<ts-nofrac>" if not frac else "<ts%s>" % frac)
    if frac and len(frac) != 7:
        shape = "<ts-frac%d>" % (len(frac) - 1)
    return shape + (match.group(5) or "")


def _norm_str(s, prefix):
    if len(s) > 2000:
        # big payloads: compare length + digest, keep diffs readable
        return "<str len=%d sha1=%s>" % (len(s), hashlib.sha1(s.encode("utf8")).hexdigest()[:12])
    if prefix:
        s = s.replace(prefix, "P_")
    return TS_RE.sub(_ts_sub, s)


def _mask_uuids(value):
    return UUID_RE.sub("<uuid>", json.dumps(value))


def _norm(value, prefix):
    if isinstance(value, str):
        return _norm_str(value, prefix)
    if isinstance(value, list):
        return [_norm(v, prefix) for v in value]
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            nk = _norm_str(k, prefix)
            if k == "uptime" and isinstance(v, str):
                out[nk] = "<uptime>"
            else:
                out[nk] = _norm(v, prefix)
        # §14.1 item 18: the `users` list next to `channels` (channels_info of /info, /connect,
        # /subscribe, /unsubscribe) comes from a Python set: compare it order-insensitively.
        if set(out.keys()) == {"channels", "users"} and isinstance(out["users"], list):
            out["users"] = sorted(out["users"], key=_mask_uuids)
        return out
    return value


class UuidNumberer(object):
    def __init__(self, fixed=None):
        self.seen = {}
        self.fixed = fixed or {}

    def sub(self, s):
        def rep(m):
            u = m.group(0)
            if u in self.fixed:
                return "<client-uuid:%s>" % self.fixed[u]
            if u not in self.seen:
                self.seen[u] = "<uuid-%d>" % (len(self.seen) + 1)
            return self.seen[u]

        return UUID_RE.sub(rep, s)

    def walk(self, value):
        if isinstance(value, str):
            return self.sub(value)
        if isinstance(value, list):
            return [self.walk(v) for v in value]
        if isinstance(value, dict):
            return {self.sub(k): self.walk(v) for k, v in value.items()}
        return value


def normalise(entries, prefix, client_uuids=None):
    numberer = UuidNumberer(client_uuids)
    return [numberer.walk(_norm(e, prefix)) for e in entries]


def render(entries):
    """One JSON document per entry, key order preserved: equal text <=> equal ordered values."""
    lines = []
    for e in entries:
        lines.extend(json.dumps(e, indent=1, ensure_ascii=False).splitlines())
    return lines
