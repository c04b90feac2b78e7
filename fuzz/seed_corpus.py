#!/usr/bin/env python3
"""Writes the seed corpora under fuzz/corpus/<target>/seed-* from the
examples in specs/*.yaml (see FUZZING.md for each target's input layout).

Run from anywhere: `python3 fuzz/seed_corpus.py` (needs PyYAML). It rewrites
only the seed-* files; what libFuzzer adds to a corpus is left alone (and
ignored by git).
"""

import base64
import hashlib
import hmac
import json
import pathlib

import yaml

FUZZ = pathlib.Path(__file__).resolve().parent
SPECS = FUZZ.parent / "specs"

# Must match KEY, DEFAULT_NOW in fuzz_targets/soundpiece_webhook.rs.
KEY = b"songbind fuzzing key, 32 bytes!!"
NOW = 1736935200


def spec(name):
    with open(SPECS / f"{name}.yaml", encoding="utf-8") as f:
        return yaml.safe_load(f)


def compact(value):
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def write(target, name, data):
    folder = FUZZ / "corpus" / target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"seed-{name}").write_bytes(data)


# ---- sse_decoder: [limit byte][cut count][2 bytes per cut][body] -------------


def sse_input(body, cuts=(), limit=0xFF):
    head = bytes([limit, len(cuts)])
    for cut in cuts:
        head += (cut % 65536).to_bytes(2, "little")
    return head + body


def sse_seeds():
    examples = spec("soundverse")["components"]["examples"]
    v6 = "".join(e["value"] for k, e in examples.items() if k.startswith("v6_"))
    v7 = "".join(e["value"] for k, e in examples.items() if k.startswith("v7_"))
    v6 += 'data: {"status": "completed", "version": 2, "audio_url": "https://a/2.mp3", "isComplete": true}\n\n'
    write("sse_decoder", "v6-stream", sse_input(v6.encode()))
    write("sse_decoder", "v7-stream", sse_input(v7.encode()))
    # CRLF, a byte order mark, keepalives, field lines, a named event with
    # multi-line data, a failure; cut inside the BOM, a CRLF and a UTF-8 char.
    mixed = (
        "\ufeff: keepalive\r\n\r\n"
        "event: job_created\r\nid: 1\r\nretry: 1000\r\n"
        'data: {"job_id":\r\ndata: "job_1"}\r\n\r\n'
        'data: {"status": "validated", "message_id": "m1", "song_name": "Caf\u00e9 \U0001f3b5"}\r\n\r\n'
        "data: not json\r\n\r\n"
        'data: {"status": "failed", "error": "GPU lost"}\r\r'
    ).encode()
    crlf = mixed.index(b"\r\n\r\n")
    char = mixed.index("\u00e9".encode())
    write("sse_decoder", "mixed-cut", sse_input(mixed, cuts=(1, crlf + 1, char + 1), limit=40))
    # An event bigger than a small limit (16 + 8 * 4 = 48 bytes).
    write(
        "sse_decoder",
        "over-limit",
        sse_input(b'data: {"status": "running", "progress": 50, "pad": "' + b"x" * 64 + b'"}\n\n', limit=4),
    )


# ---- soundpiece_webhook: header lines, blank line, body -----------------------


def signature(msg_id, timestamp, body):
    mac = hmac.new(KEY, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return "v1," + base64.b64encode(mac.digest()).decode()


def delivery(headers, body):
    return "".join(f"{k}: {v}\n" for k, v in headers).encode() + b"\n" + body


def soundpiece_seeds():
    schemas = spec("soundpiece")["components"]["schemas"]
    ready = compact(schemas["RemixSongWebhook"]["example"])
    song = schemas["RemixSongWebhook"]["example"]["data"]["remix_song"]
    failed = compact(
        {
            "type": "remix_song.failed",
            "data": dict(song, status="failed", outputs=[], error={"message": "source unreachable"}),
        }
    )
    base = [("webhook-id", "msg_2mQx8bV9"), ("webhook-timestamp", str(NOW))]
    write("soundpiece_webhook", "ready-signed-by-harness", delivery(base + [("x-fuzz-sign", "1")], ready))
    # Signed here: a secret rotation (a stale v1 entry first, then the good one).
    good = signature("msg_2mQx8bV9", NOW, ready)
    write(
        "soundpiece_webhook",
        "ready-presigned-rotation",
        delivery(base + [("webhook-signature", f"v1,c3RhbGU= {good}"), ("x-fuzz-now", str(NOW + 30))], ready),
    )
    write(
        "soundpiece_webhook",
        "failed-bare-data",
        delivery(base + [("x-fuzz-sign", "1"), ("x-fuzz-tolerance", "60")], failed),
    )
    write(
        "soundpiece_webhook",
        "stale",
        delivery(base + [("x-fuzz-sign", "1"), ("x-fuzz-now", str(NOW + 301))], ready),
    )
    write(
        "soundpiece_webhook",
        "unknown-type",
        delivery(
            base + [("webhook-signature", "v2,abc"), ("x-fuzz-sign", "1")],
            compact({"type": "remix_song.progress", "data": {"id": "op_1"}}),
        ),
    )


# ---- musicgpt_webhook: the body ----------------------------------------------


def musicgpt_seeds():
    schemas = spec("musicgpt")["components"]["schemas"]
    payload = schemas["WebhookPayload"]["example"]
    write("musicgpt_webhook", "conversion", compact(payload))
    write(
        "musicgpt_webhook",
        "lyrics",
        compact(
            {
                "conversion_type": "Lyrics",
                "task_id": payload["task_id"],
                "lyrics": payload["lyrics"],
                "lyrics_timestamped": payload["lyrics_timestamped"],
            }
        ),
    )
    write(
        "musicgpt_webhook",
        "cover",
        compact({"conversion_type": "Cover", "task_id": payload["task_id"], "image_path": "https://x/c.png"}),
    )
    write(
        "musicgpt_webhook",
        "failed",
        compact({"success": False, "conversion_id": "c1", "reason": "flagged", "lyrics_timestamped": ""}),
    )
    # The timed lyrics alone (the target also decodes its input as them).
    timed = json.loads(payload["lyrics_timestamped"])[:3]
    write("musicgpt_webhook", "timed-lyrics", compact(timed))


# ---- lyrics_parser: the text -------------------------------------------------


def lyrics_seeds():
    concrete = spec("soundpiece")["paths"]["/v1/create.remix_song"]["put"]["requestBody"]["content"][
        "application/json"
    ]["examples"]["concrete_example"]["value"]["lyrics"]
    write("lyrics_parser", "soundpiece-page", concrete.encode())
    musicgpt = spec("musicgpt")["components"]["schemas"]["WebhookPayload"]["example"]["lyrics"]
    write("lyrics_parser", "musicgpt-numbered", musicgpt.encode())
    write(
        "lyrics_parser",
        "tolerant",
        "spoken intro\r\n\r\n[ verse 2 ]\r\nla\tla\r[Pre-Chorus]\n[laughs] oh\n[Verse +7]\n[]\n[a] [b]\n[Instrumental]".encode(),
    )


# ---- multipart_reader: [setup byte][cut count][2 bytes per cut][content type]\n[body]


def multipart_input(content_type, body, setup=0, cuts=()):
    head = bytes([setup, len(cuts)])
    for cut in cuts:
        head += (cut % 65536).to_bytes(2, "little")
    return head + content_type.encode() + b"\n" + body


def wav(data_len):
    header = b"RIFF" + (36 + data_len).to_bytes(4, "little") + b"WAVEfmt "
    header += (16).to_bytes(4, "little") + bytes([1, 0, 1, 0])
    header += (8000).to_bytes(4, "little") + (16000).to_bytes(4, "little") + bytes([2, 0, 16, 0])
    return header + b"data" + data_len.to_bytes(4, "little") + bytes(range(256))[:data_len]


def multipart_seeds():
    detailed = spec("elevenlabs")["paths"]["/v1/music/detailed"]["post"]["responses"]["200"]
    example = detailed["content"]["multipart/mixed"]["examples"]["metadata_and_audio"]["value"]
    boundary = example.split("\r\n", 1)[0][2:]
    content_type = f"multipart/mixed; boundary={boundary}"
    # The spec's example (MP3 by its ID3 tag; auto is MP3), whole and cut.
    write("multipart_reader", "spec-example", multipart_input(content_type, example.encode()))
    write(
        "multipart_reader",
        "spec-example-cut",
        multipart_input(content_type, example.encode(), cuts=(1, 40, 500, 600)),
    )
    metadata = example.split("\r\n\r\n", 1)[1].split("\r\n--", 1)[0]

    def body(audio_type, audio, newline="\r\n", boundary="b0und"):
        return (
            f"preamble{newline}--{boundary}{newline}Content-Type: application/json{newline}{newline}"
            f"{metadata}{newline}--{boundary} {newline}Content-Type: {audio_type}{newline}"
            f"Content-Disposition: attachment;{newline}\tfilename=\"s.wav\"{newline}{newline}"
        ).encode() + audio + f"{newline}--{boundary}--{newline}".encode()

    # A whole WAV with LF line ends; raw PCM asked for with pcm_16000 (setup 1).
    write("multipart_reader", "wav-lf", multipart_input(
        'multipart/mixed; boundary="b0und"', body("audio/wav", wav(200), "\n")))
    write("multipart_reader", "pcm", multipart_input(
        "multipart/mixed; boundary=b0und", body("audio/pcm", bytes(range(200))), setup=1))
    # Hostile: a short WAV, a part typed audio/json, a bad boundary.
    write("multipart_reader", "short-wav", multipart_input(
        "multipart/mixed; boundary=b0und", body("audio/wav", wav(200)[:100])))
    write("multipart_reader", "audio-json", multipart_input(
        "multipart/mixed; boundary=b0und", body("audio/json", b'{"not": "audio"}')))
    write("multipart_reader", "bad-boundary", multipart_input(
        'multipart/mixed; boundary="a;b"', body("audio/mpeg", b"ID3\r\n--a x", boundary="a;b")))


# ---- headers_file: the text of a headers file (`webhooks verify --headers-file`)


def headers_file_seeds():
    # What `curl -D` saves on the receiving end, CRLF; the same with a BOM
    # and LF line ends, a comment and a status line; a repeated name; and
    # the hostile shapes: a line that is not `name: value`, a bad name, a
    # value with a control character.
    dump = (
        "POST /hooks/soundpiece HTTP/1.1\r\nhost: 127.0.0.1:8787\r\n"
        "content-type: application/json\r\nwebhook-id: msg_2KWPBgLlAfxdpx2AI54pPJ85f1W\r\n"
        "webhook-timestamp: 1736935200\r\nwebhook-signature: v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=\r\n\r\n"
    )
    write("headers_file", "curl-dump", dump.encode())
    write("headers_file", "bom-lf-comment",
          "\ufeffHTTP/1.1 200 OK\n# saved by hand\nwebhook-id: msg_1\n".encode())
    write("headers_file", "repeated",
          b"webhook-signature: v1,a\nwebhook-signature: v1,b\nWebhook-Signature: v2,c\n")
    write("headers_file", "hostile",
          b"just words\nbad name: x\nx-ctl: a\x01b\n: empty name\n")


if __name__ == "__main__":
    sse_seeds()
    soundpiece_seeds()
    musicgpt_seeds()
    lyrics_seeds()
    multipart_seeds()
    headers_file_seeds()
    for target in sorted((FUZZ / "corpus").iterdir()):
        seeds = sorted(target.glob("seed-*"))
        print(f"{target.name}: {len(seeds)} seeds, {sum(s.stat().st_size for s in seeds)} bytes")
