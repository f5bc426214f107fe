//! Feed management with the real binary: `feeds add/remove/import/export` edit the config file
//! in place (comments kept), validate, skip duplicates, and refuse the bundled config.

use std::path::Path;
use std::process::Command;

use crate::support::{TestServer, storywatch, success, write_config};

fn run(dir: &Path, args: &[&str]) -> std::process::Output {
    let mut full = vec!["--config", "storywatch.toml"];
    full.extend_from_slice(args);
    storywatch(dir, &full, None)
}

fn stderr(output: &std::process::Output) -> String {
    assert!(!output.status.success(), "expected a failure");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn config_text(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("storywatch.toml")).unwrap()
}

#[test]
fn add_and_remove_edit_the_file_in_place_keeping_comments() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), &["https://a.example/feed".to_string()], "");
    let original = format!("# My feeds, hand-picked.\n{}", config_text(dir.path()))
        .replace("[[feeds]]\n", "# the first one\n[[feeds]]\n");
    std::fs::write(&path, &original).unwrap();

    let out = success(&run(
        dir.path(),
        &[
            "feeds",
            "add",
            "https://b.example/rss?x=1&y=2",
            "--interval",
            "2h",
            "--title",
            "B \"news\"",
        ],
    ));
    assert!(out.contains("added https://b.example/rss?x=1&y=2"), "{out}");
    let text = config_text(dir.path());
    assert!(
        text.starts_with(&original),
        "the old text is untouched:\n{text}"
    );
    assert!(
        text.contains("url = \"https://b.example/rss?x=1&y=2\""),
        "{text}"
    );
    assert!(text.contains("interval = \"2h\""), "{text}");
    // The daemon's config loader accepts the result.
    success(&run(dir.path(), &["check"]));

    let dup = stderr(&run(
        dir.path(),
        &["feeds", "add", "HTTPS://A.example/feed"],
    ));
    assert!(dup.contains("already listed"), "{dup}");
    let bad = stderr(&run(dir.path(), &["feeds", "add", "javascript:alert(1)"]));
    assert!(bad.contains("not an absolute http(s) URL"), "{bad}");
    let short = stderr(&run(
        dir.path(),
        &["feeds", "add", "https://c.example/", "--interval", "10s"],
    ));
    assert!(short.contains("under 1m"), "{short}");
    assert_eq!(
        config_text(dir.path()),
        text,
        "failed commands change nothing"
    );

    success(&run(
        dir.path(),
        &["feeds", "remove", "https://a.example/feed"],
    ));
    let text = config_text(dir.path());
    assert!(!text.contains("https://a.example/feed"), "{text}");
    assert!(text.starts_with("# My feeds, hand-picked.\n"), "{text}");
    assert!(text.contains("https://b.example/rss"), "{text}");
    let missing = stderr(&run(
        dir.path(),
        &["feeds", "remove", "https://a.example/feed"],
    ));
    assert!(missing.contains("is not listed"), "{missing}");

    // The list follows the file.
    let list = success(&run(dir.path(), &["feeds", "list", "--json"]));
    assert_eq!(list.lines().count(), 1, "{list}");
}

#[test]
fn import_reads_nested_opml_and_reports_duplicates_and_invalid_urls() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), &["https://a.example/feed".to_string()], "");
    let opml = r#"<?xml version="1.0" encoding="UTF-8"?>
<opml version="2.0">
  <head><title>Reader export</title></head>
  <body>
    <outline text="World">
      <outline type="rss" text="A again" xmlUrl="https://a.example/feed"/>
      <outline text="Asia">
        <outline type="rss" text="Caf&#233; &amp; Co" title="Caf&#233; &amp; Co" xmlUrl="https://c.example/rss?a=1&amp;b=2"/>
      </outline>
    </outline>
    <outline type="rss" text="D" xmlUrl="https://d.example/atom.xml"></outline>
    <outline type="rss" text="D twice" xmlUrl="https://d.example/atom.xml"/>
    <outline type="rss" text="FTP" xmlUrl="ftp://e.example/feed"/>
    <outline type="link" text="a web page" url="https://f.example/"/>
  </body>
</opml>"#;
    std::fs::write(dir.path().join("reader.opml"), opml).unwrap();
    let out = success(&run(dir.path(), &["feeds", "import", "reader.opml"]));
    assert!(
        out.contains("imported 2 feeds") && out.contains("2 duplicates and 1 invalid skipped"),
        "{out}"
    );
    assert!(out.contains("duplicate  https://a.example/feed"), "{out}");
    assert!(out.contains("invalid    ftp://e.example/feed"), "{out}");
    let text = config_text(dir.path());
    assert!(
        text.contains("url = \"https://c.example/rss?a=1&b=2\""),
        "{text}"
    );
    assert!(text.contains("title = \"Café & Co\""), "{text}");

    // Export lists the config's feeds, escaped, and imports back as all duplicates.
    let exported = success(&run(dir.path(), &["feeds", "export"]));
    assert!(exported.contains("<opml version=\"2.0\">"), "{exported}");
    assert!(
        exported.contains("xmlUrl=\"https://c.example/rss?a=1&amp;b=2\""),
        "{exported}"
    );
    assert!(exported.contains("title=\"Café &amp; Co\""), "{exported}");
    std::fs::write(dir.path().join("back.opml"), &exported).unwrap();
    let again = success(&run(dir.path(), &["feeds", "import", "back.opml"]));
    assert!(
        again.contains("imported 0 feeds") && again.contains("3 duplicates"),
        "{again}"
    );

    std::fs::write(
        dir.path().join("broken.opml"),
        "<opml><body><outline xmlUrl=\"x\"></body>",
    )
    .unwrap();
    let broken = stderr(&run(dir.path(), &["feeds", "import", "broken.opml"]));
    assert!(broken.contains("not well-formed XML"), "{broken}");
}

#[test]
fn export_uses_polled_titles_and_editing_the_bundled_config_is_refused() {
    let server = TestServer::start();
    server.route("/wire.rss", crate::support::wire_feed());
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), &[server.url("/wire.rss")], "");
    success(&run(dir.path(), &["poll", "--once"]));
    let exported = success(&run(dir.path(), &["feeds", "export"]));
    assert!(
        exported.contains("text=\"Example Wire — World\""),
        "{exported}"
    );

    let home = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_storywatch"))
        .args(["feeds", "add", "https://a.example/feed"])
        .current_dir(home.path())
        .env("HOME", home.path())
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("CONFIGURATION_DIRECTORY")
        .env_remove("STORYWATCH_CONFIG")
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(
        err.contains("bundled default config") && err.contains("--config"),
        "{err}"
    );
}
