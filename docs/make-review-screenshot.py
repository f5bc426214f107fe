#!/usr/bin/env python3
"""Takes docs/review-page.png from a realistic review page: the shared development set's items
(../shared/eval/dev.jsonl) are served as RSS feeds by a local HTTP server, polled by the real
binary, a few matches are marked from the terminal, and headless Chromium photographs the page
that `storywatch serve` serves. Nothing leaves 127.0.0.1.

Usage: python3 docs/make-review-screenshot.py [path/to/dev.jsonl]   (after `cargo build`;
the binary is looked up in $CARGO_TARGET_DIR, else target/)
"""
import http.server, json, os, shutil, subprocess, sys, tempfile, threading
from datetime import datetime
from email.utils import format_datetime
from xml.sax.saxutils import escape

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
dev = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "..", "shared", "eval", "dev.jsonl")
items = [json.loads(line) for line in open(dev, encoding="utf-8") if line.strip()]
feeds = {}
for item in items:
    feeds.setdefault(item.get("feed") or "news", []).append(item)

work = tempfile.mkdtemp(prefix="storywatch-screenshot-")
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
[web]
listen = "127.0.0.1:0"
"""
for name in feeds:
    config += f'[[feeds]]\nurl = "http://127.0.0.1:{port}/{name}.xml"\ntitle = "{name}"\n'
with open(os.path.join(work, "storywatch.toml"), "w", encoding="utf-8") as f:
    f.write(config)
target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(root, "target")
binary = os.path.join(target, "debug", "storywatch")
run = lambda *args: subprocess.run([binary, "--config", "storywatch.toml", *args], cwd=work,
                                   check=True, capture_output=True, text=True).stdout
print(run("poll", "--once").strip().splitlines()[-1])
# A reviewer's first minute: the two newest matches confirmed and rejected.
listed = json.loads("[" + ",".join(run("items", "list", "--json").splitlines()) + "]")
if len(listed) >= 2:
    run("items", "mark", str(listed[0]["id"]), "relevant")
    run("items", "mark", str(listed[1]["id"]), "irrelevant")

serve = subprocess.Popen([binary, "--config", "storywatch.toml", "serve"], cwd=work,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
try:
    url = serve.stdout.readline().strip().removeprefix("review page: ")
    out = os.path.join(root, "docs", "review-page.png")
    subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--hide-scrollbars", f"--user-data-dir={work}/chromium",
                    "--window-size=1200,1400", f"--screenshot={out}", url],
                   check=True, capture_output=True)
finally:
    serve.terminate()
    serve.wait()
    server.shutdown()
    shutil.rmtree(work)
print("wrote docs/review-page.png")
