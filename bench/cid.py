"""CID benchmark: activity_cid over a ~2 KiB activity, against plain sha256 of the same bytes.

Run: .venv/bin/python bench/cid.py   (target: under 50 µs per activity)
"""

from __future__ import annotations

import hashlib
import json
import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fedsx.cid import activity_cid


def two_kib_activity() -> dict:
    note = {
        "id": "https://mastodon.example/users/alice/statuses/1100000000000001",
        "type": "Note",
        "attributedTo": "https://mastodon.example/users/alice",
        "to": ["https://www.w3.org/ns/activitystreams#Public"],
        "cc": ["https://mastodon.example/users/alice/followers"],
        "content": "<p>" + "Hello fediverse, this is a test post. " * 24 + "</p>",
        "published": "2026-11-27T10:00:00Z",
        "tag": [
            {"type": "Hashtag", "name": f"#tag{i}", "href": f"https://m.example/t/{i}"}
            for i in range(6)
        ],
        "sensitive": False,
    }
    activity = {
        "@context": [
            "https://www.w3.org/ns/activitystreams",
            {"toot": "http://joinmastodon.org/ns#"},
        ],
        "id": note["id"] + "/activity",
        "type": "Create",
        "actor": note["attributedTo"],
        "published": note["published"],
        "to": note["to"],
        "cc": note["cc"],
        "object": note,
    }
    return activity


def per_call_us(fn, number: int) -> float:
    best = min(timeit.repeat(fn, number=number, repeat=5))
    return best / number * 1e6


def main() -> None:
    activity = two_kib_activity()
    size = len(json.dumps(activity).encode())
    raw = json.dumps(activity, separators=(",", ":"), sort_keys=True).encode()
    n = 2000
    cid_us = per_call_us(lambda: activity_cid(activity), n)
    base_us = per_call_us(
        lambda: hashlib.sha256(json.dumps(activity, sort_keys=True).encode()).digest(), n
    )
    print(f"activity size: {size} bytes (canonical {len(raw)})")
    print(f"activity_cid:                 {cid_us:8.1f} µs/activity   (target < 50)")
    print(f"baseline json.dumps+sha256:   {base_us:8.1f} µs/activity")
    print(f"ratio cid/baseline:           {cid_us / base_us:8.2f}x")


if __name__ == "__main__":
    main()
