#!/usr/bin/env python3
"""Builds docs/example-digest.{md,html} from ../shared/eval/dev.jsonl, the way a user would see
them: the items are served as RSS feeds (one per `feed` field) by a local HTTP server, polled by
the real binary, and the digest is built with `storywatch digest --now`.

Usage: python3 docs/make-example-digest.py [path/to/dev.jsonl]   (after `cargo build`; the
binary is taken from $CARGO_TARGET_DIR when set, else target/)
"""
import http.server, json, os, shutil, subprocess, sys, tempfile, threading
from email.utils import format_datetime
from datetime import datetime
from xml.sax.saxutils import escape

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
dev = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "..", "shared", "eval", "dev.jsonl")
items = [json.loads(line) for line in open(dev, encoding="utf-8") if line.strip()]
feeds = {}
for item in items:
    feeds.setdefault(item.get("feed") or "news", []).append(item)

work = tempfile.mkdtemp(prefix="storywatch-example-")
os.makedirs(os.path.join(work, "www"))
for name, entries in feeds.items():
    rss = ['<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>',
           f"<title>{escape(name.title())} desk</title><link>https://example.org/</link><description>x</description>"]
    for e in entries:
        when = datetime.fromisoformat(e["published"].replace("Z", "+00:00"))
        rss.append("<item>"
                   f"<title>{escape(e['title'])}</title>"
                   f"<link>{escape(e['link'])}</link><guid>{escape(e['id'])}</guid>"
                   f"<description>{escape(e.get('summary') or '')}</description>"
                   f"<pubDate>{format_datetime(when)}</pubDate>"
                   f"<source url=\"https://example.org/\">{escape(e.get('source') or '')}</source>"
                   "</item>")
    rss.append("</channel></rss>")
    with open(os.path.join(work, "www", f"{name}.xml"), "w", encoding="utf-8") as f:
        f.write("".join(rss))

class Quiet(http.server.SimpleHTTPRequestHandler):
    def __init__(self, *a, **k):
        super().__init__(*a, directory=os.path.join(work, "www"), **k)
    def log_message(self, *a):
        pass

server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
threading.Thread(target=server.serve_forever, daemon=True).start()
port = server.server_address[1]
config = f"""[storage]
database = "storywatch.db"
[story]
name = "US–China fentanyl cooperation"
seeds = {json.dumps(os.path.join(root, "seeds"))}
[fetch]
allow_private_networks = true
# The items are months old: keep them as new rather than as a first poll's backlog.
backlog_max_age = "off"
[digest]
at = "07:00"
timezone = "Europe/London"
[[notify]]
kind = "file"
path = "digests"
"""
for name in feeds:
    config += f'[[feeds]]\nurl = "http://127.0.0.1:{port}/{name}.xml"\ntitle = "{name}"\n'
with open(os.path.join(work, "storywatch.toml"), "w", encoding="utf-8") as f:
    f.write(config)
binary = os.path.join(os.environ.get("CARGO_TARGET_DIR") or os.path.join(root, "target"),
                      "debug", "storywatch")
run = lambda *args: subprocess.run([binary, "--config", "storywatch.toml", *args], cwd=work,
                                   check=True, capture_output=True, text=True).stdout
print(run("poll", "--once").strip().splitlines()[-1])
run("digest", "--now")
with open(os.path.join(root, "docs", "example-digest.md"), "w", encoding="utf-8") as f:
    f.write(run("digest", "show", "1"))
with open(os.path.join(root, "docs", "example-digest.html"), "w", encoding="utf-8") as f:
    f.write(run("digest", "show", "1", "--format", "html"))
server.shutdown()
shutil.rmtree(work)
print("wrote docs/example-digest.md and docs/example-digest.html")
