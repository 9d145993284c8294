#!/usr/bin/env python3
"""Fills the gateway's micro-cache with every cacheable page of the seeded
data: each article list page of every size (limit 1-100, following the
cursors), each article and each article's first comment page. Prints
`RESULT requests=N bytes=B`: what was asked for, to compare with what the
cache holds (http_cache_bytes) and the gateway's RSS (make bench).

    scripts/bench/fill-cache.py BASE_URL FIRST_ID LAST_ID
"""
import http.client
import json
import sys
import urllib.parse


def main() -> None:
    base, first, last = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    url = urllib.parse.urlsplit(base)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    requests = received = 0

    def get(path: str) -> dict:
        nonlocal requests, received
        connection.request("GET", path)
        response = connection.getresponse()
        body = response.read()
        requests += 1
        received += len(body)
        if response.status != 200:
            sys.exit(f"GET {path}: {response.status} {body[:200]!r}")
        return json.loads(body)

    for limit in range(1, 101):
        cursor = None
        while True:
            query = {"limit": limit} | ({"cursor": cursor} if cursor else {})
            page = get("/api/v1/articles?" + urllib.parse.urlencode(query))
            cursor = page.get("next_cursor")
            if not cursor:
                break
    for article in range(first, last + 1):
        get(f"/api/v1/articles/{article}")
        get(f"/api/v1/articles/{article}/comments?limit=20")
    print(f"RESULT requests={requests} bytes={received}")


if __name__ == "__main__":
    main()
