#!/usr/bin/env python3
"""The listener's figures for RELIABILITY.md (issue 17), against the release
binary on loopback:

1. RSS after N MusicGPT lyrics deliveries whose task ids are 1 MiB each
   (each a new de-dup key): the keys are kept as 32-byte digests;
2. with S slow clients connected (headers half sent), the time for one
   real delivery to be answered, and the RSS then.

    cargo build --release -p songbind-cli
    python3 scripts/listener-figures.py [--deliveries 10000] [--slow 500]
"""
import argparse
import http.client
import json
import os
import socket
import subprocess
import time

BINARY = "target/release/songbind"


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def start():
    child = subprocess.Popen(
        [BINARY, "webhooks", "listen", "--provider", "musicgpt", "--port", "0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    first = child.stderr.readline().strip()
    assert first.startswith("listening on http://127.0.0.1:"), first
    port = int(first.rsplit(":", 1)[1].strip("/"))
    return child, port


def post(port, body):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    connection.request("POST", "/", body=body, headers={"content-type": "application/json"})
    status = connection.getresponse().status
    connection.close()
    return status


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--deliveries", type=int, default=10_000)
    parser.add_argument("--slow", type=int, default=500)
    args = parser.parse_args()

    child, port = start()
    try:
        idle = rss_kib(child.pid)
        filler = "x" * (1 << 20)
        started = time.monotonic()
        for n in range(args.deliveries):
            body = json.dumps(
                {"conversion_type": "Lyrics", "task_id": f"{n:08}{filler}", "lyrics": "la"}
            ).encode()
            assert post(port, body) == 200
        elapsed = time.monotonic() - started
        print(
            f"{args.deliveries} deliveries with 1 MiB task ids in {elapsed:.1f} s: "
            f"RSS {idle / 1024:.1f} MiB idle, {rss_kib(child.pid) / 1024:.1f} MiB after"
        )

        slow = []
        for _ in range(args.slow):
            peer = socket.create_connection(("127.0.0.1", port))
            peer.sendall(b"POST / HTTP/1.1\r\nhost: x\r\nx-a: 1\r\n")
            slow.append(peer)
        body = json.dumps({"conversion_type": "Lyrics", "task_id": "real", "lyrics": "la"})
        started = time.monotonic()
        status = post(port, body.encode())
        answered = time.monotonic() - started
        print(
            f"with {args.slow} slow clients connected: a real delivery answered {status} "
            f"in {answered * 1000:.1f} ms; RSS {rss_kib(child.pid) / 1024:.1f} MiB"
        )
        for peer in slow:
            peer.close()
    finally:
        child.terminate()
        child.wait()


if __name__ == "__main__":
    os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    main()
