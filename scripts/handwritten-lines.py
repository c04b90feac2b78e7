#!/usr/bin/env python3
"""Handwritten lines per provider, as ARCHITECTURE.md reports them.

Counts the lines of code (no blank lines, no comments, no `#[cfg(test)]`
module) of each file given, and their total:

    python3 scripts/handwritten-lines.py crates/songbind/src/soundpiece.rs
"""
import sys


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


total = 0
for path in sys.argv[1:]:
    n = code_lines(path)
    total += n
    print(f"{n:6} {path}")
if len(sys.argv) > 2:
    print(f"{total:6} total")
