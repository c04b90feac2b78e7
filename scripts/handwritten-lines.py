#!/usr/bin/env python3
"""Handwritten lines per provider, as ARCHITECTURE.md reports them.

Counts the lines of code (no blank lines, no comments, no `#[cfg(test)]`
module) of each file given, and their total:

    python3 scripts/handwritten-lines.py crates/songbind/src/soundpiece.rs

With `--architecture`, writes the table of ARCHITECTURE.md between its
`<!-- handwritten-lines:begin -->` and `<!-- handwritten-lines:end -->`
markers: one row per provider (every `specs/<slug>.yaml`), one column per
layer, and the shared machinery. With `--architecture --check` (CI), exits 1
when the table in the file is not what this script writes, so the counts
cannot go stale.
"""
import os
import sys

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
BEGIN = "<!-- handwritten-lines:begin -->"
END = "<!-- handwritten-lines:end -->"

# Where each layer keeps a provider's own code ({slug} is the spec's name).
LAYERS = [
    ("`songbind` module", "crates/songbind/src/{slug}.rs"),
    ("CLI module", "crates/songbind-cli/src/{slug}.rs"),
    ("emulator module", "crates/songbind-emulator/src/{slug}.rs"),
    ("generated crate's `lib.rs`", "crates/songbind-{slug}/src/lib.rs"),
]

# What every provider reuses, in the `songbind` crate.
SHARED = [
    "crates/songbind/src/poll.rs",
    "crates/songbind/src/client.rs",
    "crates/songbind/src/job.rs",
    "crates/songbind/src/retry.rs",
    "crates/songbind/src/error.rs",
    "crates/songbind/src/redact.rs",
    "crates/songbind/src/files.rs",
    "crates/songbind/src/audio.rs",
    "crates/songbind/src/multipart.rs",
    "crates/songbind/src/upload.rs",
    "crates/songbind/src/download.rs",
]


def code_lines(path):
    count = 0
    depth = None  # brace depth inside a #[cfg(test)] module
    pending_test = False
    for line in open(path, encoding="utf-8"):
        text = line.strip()
        if depth is not None:
            depth += text.count("{") - text.count("}")
            if depth <= 0:
                depth = None
            continue
        if text == "#[cfg(test)]":
            pending_test = True
            continue
        if pending_test and text.startswith("mod ") and text.endswith("{"):
            depth = 1
            pending_test = False
            continue
        pending_test = False
        if not text or text.startswith("//"):
            continue
        count += 1
    return count


def cell(relative):
    """`<slug>.rs` and, when there is one, its module directory `<slug>/`."""
    path = os.path.join(ROOT, relative)
    if not os.path.exists(path):
        return "–"
    name = f"`{os.path.basename(relative)}`"
    count = code_lines(path)
    directory = path[: -len(".rs")]
    if os.path.isdir(directory):
        for parent, _, files in sorted(os.walk(directory)):
            count += sum(code_lines(os.path.join(parent, f)) for f in files if f.endswith(".rs"))
        name += f" + `{os.path.basename(directory)}/`"
    return f"{name}: {count}"


def table():
    slugs = sorted(
        name[: -len(".yaml")]
        for name in os.listdir(os.path.join(ROOT, "specs"))
        if name.endswith(".yaml")
    )
    lines = [
        "| provider | " + " | ".join(title for title, _ in LAYERS) + " |",
        "|---" * (len(LAYERS) + 1) + "|",
    ]
    for slug in slugs:
        cells = [cell(pattern.format(slug=slug)) for _, pattern in LAYERS]
        lines.append(f"| {slug} | " + " | ".join(cells) + " |")
    shared = ", ".join(
        f"`{os.path.basename(p)}` {code_lines(os.path.join(ROOT, p))}"
        for p in SHARED
        if os.path.exists(os.path.join(ROOT, p))
    )
    lines.append("")
    lines.append(f"Shared machinery in `songbind` (every provider reuses it): {shared}.")
    return "\n".join(lines)


def architecture(check):
    path = os.path.join(ROOT, "ARCHITECTURE.md")
    text = open(path, encoding="utf-8").read()
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        sys.exit(f"{path}: no {BEGIN} ... {END} markers")
    wanted = text[: start + len(BEGIN)] + "\n" + table() + "\n" + text[end:]
    if wanted == text:
        return 0
    if check:
        print(
            "ARCHITECTURE.md's handwritten-lines table is stale: run "
            "`python3 scripts/handwritten-lines.py --architecture` and commit it",
            file=sys.stderr,
        )
        return 1
    open(path, "w", encoding="utf-8").write(wanted)
    return 0


if __name__ == "__main__":
    args = sys.argv[1:]
    if "--architecture" in args:
        sys.exit(architecture("--check" in args))
    total = 0
    for path in args:
        n = code_lines(path)
        total += n
        print(f"{n:6} {path}")
    if len(args) > 1:
        print(f"{total:6} total")
