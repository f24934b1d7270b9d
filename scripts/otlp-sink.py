"""An OTLP/HTTP sink for the tracing benchmark: answers every export at once (as a collector on
another machine would) and counts requests and bytes; GET /stats answers the counts as JSON.
Usage: otlp-sink.py PORT"""

import http.server
import json
import sys
import threading

counts = {"requests": 0, "bytes": 0}
lock = threading.Lock()


class Sink(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        size = int(self.headers.get("content-length", 0))
        self.rfile.read(size)
        with lock:
            counts["requests"] += 1
            counts["bytes"] += size
        self.answer(b"", "application/x-protobuf")

    def do_GET(self):
        with lock:
            body = json.dumps(counts).encode()
        self.answer(body, "application/json")

    def answer(self, body, content_type):
        self.send_response(200)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Sink).serve_forever()
