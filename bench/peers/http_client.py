#!/usr/bin/env python3
"""Python peer of the Weft HTTP client benchmarks: N GETs of one URL with C in flight through
concurrent.futures.ThreadPoolExecutor(C) and urllib (one connection per request, as urllib
does), the bodies' total length printed as a checksum like bench/http/client.weft.

    python3 bench/peers/http_client.py URL N C

Standard library only.
"""
import sys
import urllib.request
from concurrent.futures import ThreadPoolExecutor


def fetch(url):
    with urllib.request.urlopen(url) as r:
        if r.status != 200:
            raise RuntimeError(f"status {r.status}")
        return len(r.read())


def main():
    url, n, c = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    with ThreadPoolExecutor(c) as ex:
        print(sum(ex.map(fetch, [url] * n)))


if __name__ == "__main__":
    main()
