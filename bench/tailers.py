#!/usr/bin/env python3
"""Tailing consumers for measurements: N threads, each on one keep-alive connection, follow the
log from its current end with GET /messages?from=<next>&limit=1000&waitMs=1000 (long polls).
usage: bench/tailers.py PORT THREADS SECONDS  -> one JSON line: answers and entries received."""
import http.client
import json
import sys
import threading
import time


def main() -> None:
    port, threads, seconds = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    stop = time.time() + seconds
    answers = [0] * threads
    entries = [0] * threads

    def follow(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/messages?from=1&limit=1")
        nxt = json.loads(conn.getresponse().read())["lastId"] + 1
        while time.time() < stop:
            conn.request("GET", f"/messages?from={nxt}&limit=1000&waitMs=1000")
            page = json.loads(conn.getresponse().read())
            answers[i] += 1
            entries[i] += page["next"] - nxt
            nxt = page["next"]

    workers = [threading.Thread(target=follow, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    print(json.dumps({"tailers": threads, "answers": sum(answers), "entries": sum(entries)}))


if __name__ == "__main__":
    main()
