#!/usr/bin/env python3
"""Takes docs/review-page.png from a realistic review page: the shared development set's items
(../shared/eval/dev.jsonl) are served as RSS feeds by a local HTTP server, polled by the real
binary, a few matches are marked from the terminal, and headless Chromium photographs the page
that `storywatch serve` serves. Nothing leaves 127.0.0.1.

Usage: python3 docs/make-review-screenshot.py [path/to/dev.jsonl]   (after `cargo build`;
the binary is looked up in $CARGO_TARGET_DIR, else target/)
"""
import json, os, subprocess, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from devset import ROOT, DevSet, dev_path

dev = DevSet(dev_path(sys.argv), "storywatch-screenshot-", '[web]\nlisten = "127.0.0.1:0"\n')
try:
    print(dev.run("poll", "--once").strip().splitlines()[-1])
    # A reviewer's first minute: the two newest matches confirmed and rejected.
    listed = json.loads("[" + ",".join(dev.run("items", "list", "--json").splitlines()) + "]")
    if len(listed) >= 2:
        dev.run("items", "mark", str(listed[0]["id"]), "relevant")
        dev.run("items", "mark", str(listed[1]["id"]), "irrelevant")
    serve = subprocess.Popen([dev.binary, "--config", "storywatch.toml", "serve"], cwd=dev.work,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        url = serve.stdout.readline().strip().removeprefix("review page: ")
        out = os.path.join(ROOT, "docs", "review-page.png")
        subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu",
                        "--no-first-run", "--disable-background-networking",
                        "--disable-component-update", "--disable-sync", "--hide-scrollbars",
                        f"--user-data-dir={dev.work}/chromium", "--window-size=1200,1400",
                        f"--screenshot={out}", url],
                       check=True, capture_output=True)
    finally:
        serve.terminate()
        serve.wait()
finally:
    dev.close()
print("wrote docs/review-page.png")
