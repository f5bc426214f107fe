//! The `file` channel: one Markdown file per digest, named by its local date.

use std::io::Write;
use std::path::{Path, PathBuf};

use jiff::tz::TimeZone;

use super::NotifyError;
use crate::store::DigestRow;

/// Writes the digest to `folder/YYYY-MM-DD.md` (local date of the digest), or
/// `YYYY-MM-DD-<id>.md` when another digest already has that day's name. The file appears
/// whole or not at all (written to a temporary name, synced, then renamed), and writing the
/// same digest twice leaves one file. The file ends with an invisible
/// `<!-- storywatch digest ID -->` line: two digests can have the same text (two empty ones in
/// the same minute), so the id, not the content, says whether the file is this digest's.
pub(super) fn deliver(
    folder: &Path,
    digest: &DigestRow,
    zone: &TimeZone,
) -> Result<PathBuf, NotifyError> {
    let error = |source| NotifyError::File {
        path: folder.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(folder).map_err(error)?;
    let date = digest.created_at.to_zoned(zone.clone()).date();
    let plain = folder.join(format!("{date}.md"));
    let marker = format!("<!-- storywatch digest {} -->\n", digest.id);
    let target = match std::fs::read_to_string(&plain) {
        Err(_) => plain,
        Ok(existing) if existing.ends_with(&marker) => return Ok(plain),
        Ok(_) => folder.join(format!("{date}-{}.md", digest.id)),
    };
    let content = format!("{}\n{marker}", digest.markdown);
    let temporary = folder.join(format!(".{date}-{}.md.tmp", digest.id));
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(content.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&temporary, &target)
    };
    write().map_err(error)?;
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(id: i64, text: &str) -> DigestRow {
        DigestRow {
            id,
            created_at: "2026-03-01T23:30:00Z".parse().unwrap(),
            period_start: None,
            period_end: "2026-03-01T23:30:00Z".parse().unwrap(),
            match_count: 0,
            markdown: text.into(),
            model: None,
        }
    }

    #[test]
    fn names_by_local_date_and_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let tokyo = TimeZone::get("Asia/Tokyo").unwrap();
        let first = deliver(dir.path(), &digest(1, "one"), &tokyo).unwrap();
        assert!(first.ends_with("2026-03-02.md"), "{first:?}");
        assert_eq!(
            deliver(dir.path(), &digest(1, "one"), &tokyo).unwrap(),
            first
        );
        let second = deliver(dir.path(), &digest(2, "two"), &tokyo).unwrap();
        assert!(second.ends_with("2026-03-02-2.md"), "{second:?}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
        // Same text, different digest: its own file.
        let third = deliver(dir.path(), &digest(3, "one"), &tokyo).unwrap();
        assert!(third.ends_with("2026-03-02-3.md"), "{third:?}");
        let text = std::fs::read_to_string(&first).unwrap();
        assert_eq!(text, "one\n<!-- storywatch digest 1 -->\n");
    }

    #[test]
    fn unwritable_folder_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, "x").unwrap();
        let err = deliver(&blocker, &digest(1, "x"), &TimeZone::UTC)
            .unwrap_err()
            .to_string();
        assert!(err.contains("writable folder"), "{err}");
    }
}
