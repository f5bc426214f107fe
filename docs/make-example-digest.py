#!/usr/bin/env python3
"""Builds docs/example-digest.{md,html} from ../shared/eval/dev.jsonl, the way a user would see
them: the items are served as RSS feeds (one per `feed` field) by a local HTTP server, polled by
the real binary, and the digest is built with `storywatch digest --now`.

Usage: python3 docs/make-example-digest.py [path/to/dev.jsonl]   (after `cargo build`; the
binary is taken from $CARGO_TARGET_DIR when set, else target/)
"""
import os, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from devset import ROOT, DevSet, dev_path

dev = DevSet(dev_path(sys.argv), "storywatch-example-")
try:
    print(dev.run("poll", "--once").strip().splitlines()[-1])
    dev.run("digest", "--now")
    with open(os.path.join(ROOT, "docs", "example-digest.md"), "w", encoding="utf-8") as f:
        f.write(dev.run("digest", "show", "1"))
    with open(os.path.join(ROOT, "docs", "example-digest.html"), "w", encoding="utf-8") as f:
        f.write(dev.run("digest", "show", "1", "--format", "html"))
finally:
    dev.close()
print("wrote docs/example-digest.md and docs/example-digest.html")
