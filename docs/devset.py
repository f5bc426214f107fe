"""The shared development set as a user's feed list, for the scripts that make docs/ from the
real binary (make-example-digest.py, make-review-screenshot.py): ../shared/eval/dev.jsonl's
items are written as RSS feeds (one per `feed` field), served by a local HTTP server on
127.0.0.1, and a config polling them is written beside a fresh database.
"""
import http.server, json, os, shutil, subprocess, tempfile, threading
from datetime import datetime
from email.utils import format_datetime
from xml.sax.saxutils import escape

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class DevSet:
    """A work folder with the feeds, their server and a config; `run` calls the binary there."""

    def __init__(self, dev_path, prefix, extra_config=""):
        items = [json.loads(line) for line in open(dev_path, encoding="utf-8") if line.strip()]
        feeds = {}
        for item in items:
            feeds.setdefault(item.get("feed") or "news", []).append(item)
        self.work = tempfile.mkdtemp(prefix=prefix)
        www = os.path.join(self.work, "www")
        os.makedirs(www)
        for name, entries in feeds.items():
            with open(os.path.join(www, f"{name}.xml"), "w", encoding="utf-8") as f:
                f.write(rss(name, entries))

        class Quiet(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *a, **k):
                super().__init__(*a, directory=www, **k)

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        port = self.server.server_address[1]
        config = f"""[storage]
database = "storywatch.db"
[story]
name = "US–China fentanyl cooperation"
seeds = {json.dumps(os.path.join(ROOT, "seeds"))}
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
{extra_config}"""
        for name in feeds:
            config += f'[[feeds]]\nurl = "http://127.0.0.1:{port}/{name}.xml"\ntitle = "{name}"\n'
        with open(os.path.join(self.work, "storywatch.toml"), "w", encoding="utf-8") as f:
            f.write(config)
        target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target")
        self.binary = os.path.join(target, "debug", "storywatch")

    def run(self, *args):
        """Runs `storywatch --config storywatch.toml ARGS` in the work folder; its stdout."""
        return subprocess.run([self.binary, "--config", "storywatch.toml", *args], cwd=self.work,
                              check=True, capture_output=True, text=True).stdout

    def close(self):
        """Stops the server and removes the work folder."""
        self.server.shutdown()
        shutil.rmtree(self.work)


def rss(name, entries):
    """One RSS 2.0 feed of dev-set items."""
    out = ['<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>',
           f"<title>{escape(name.title())} desk</title><link>https://example.org/</link>"
           "<description>x</description>"]
    for e in entries:
        when = datetime.fromisoformat(e["published"].replace("Z", "+00:00"))
        out.append("<item>"
                   f"<title>{escape(e['title'])}</title>"
                   f"<link>{escape(e['link'])}</link><guid>{escape(e['id'])}</guid>"
                   f"<description>{escape(e.get('summary') or '')}</description>"
                   f"<pubDate>{format_datetime(when)}</pubDate>"
                   f"<source url=\"https://example.org/\">{escape(e.get('source') or '')}</source>"
                   "</item>")
    out.append("</channel></rss>")
    return "".join(out)


def dev_path(argv):
    """The dev set named on the command line, else ../shared/eval/dev.jsonl."""
    return argv[1] if len(argv) > 1 else os.path.join(ROOT, "..", "shared", "eval", "dev.jsonl")
