#!/usr/bin/env python3
"""A fake rlog HTTP server for testing helm/rlog/files/helm-test.sh without a cluster.

Usage: fake_rlog.py PORTFILE MODE
  MODE good      /insert answers 503 once, then 200; /messages?from=ID&limit=N pages the
                 inserted messages
                 (Content-Length from 127.0.0.1, chunked from any other loopback address).
  MODE lagging   like good, but 127.0.1.1 never shows the message (the test must fail).
Writes the bound port to PORTFILE, serves until killed.
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODE = sys.argv[2]
STATE = {"inserts": 0, "messages": []}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # quiet
        pass

    def _send(self, status, obj):
        data = json.dumps(obj).encode()
        chunked = self.connection.getsockname()[0] != "127.0.0.1"
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            half = len(data) // 2
            for part in (data[:half], data[half:]):
                if part:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        self.close_connection = True

    def do_GET(self):
        if self.path in ("/readyz", "/healthz"):
            self._send(200, {"status": "ok"})
        elif self.path.startswith("/messages?"):
            query = dict(kv.split("=", 1) for kv in self.path.split("?", 1)[1].split("&"))
            first, limit = int(query["from"]), int(query.get("limit", "100"))
            local = self.connection.getsockname()[0]
            held = [] if MODE == "lagging" and local == "127.0.1.1" else STATE["messages"]
            page = [{"id": i + 1, "message": m, "timestamp": 0}
                    for i, m in enumerate(held) if first <= i + 1 < first + limit]
            self._send(200, {"lastId": len(held), "messages": page,
                             "next": page[-1]["id"] + 1 if page else first})
        else:
            self._send(404, {"error": "not found"})

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path != "/insert":
            self._send(404, {"error": "not found"})
            return
        req = json.loads(body)
        STATE["inserts"] += 1
        if STATE["inserts"] == 1:
            self._send(503, {"error": "read-only: no quorum"})
            return
        if req["message"] not in STATE["messages"]:
            STATE["messages"].append(req["message"])
        self._send(200, {"id": STATE["messages"].index(req["message"]) + 1,
                         "writeConcern": req["writeConcern"]})


def main():
    server = ThreadingHTTPServer(("0.0.0.0", 0), Handler)
    with open(sys.argv[1], "w", encoding="ascii") as f:
        f.write(str(server.server_address[1]))
    server.serve_forever()


if __name__ == "__main__":
    main()
