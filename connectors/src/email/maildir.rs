//! Maildir folders (`cur/` and `new/`, one file per message), oldest file first, so that a reply
//! is imported after what it answers. The listing is written here rather than taken from
//! mail-parser's maildir reader, which reads every file up front and in directory order.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The raw messages of a Maildir folder, oldest first; each file is read when its turn comes.
pub fn messages(dir: &Path) -> io::Result<impl Iterator<Item = io::Result<Vec<u8>>> + use<>> {
    let mut files: Vec<(SystemTime, PathBuf)> = Vec::new();
    for sub in ["cur", "new"] {
        let path = dir.join(sub);
        let entries = fs::read_dir(&path).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        for entry in entries {
            let entry = entry?;
            if entry.file_name().to_string_lossy().starts_with('.') || !entry.file_type()?.is_file() {
                continue;
            }
            files.push((entry.metadata()?.modified()?, entry.path()));
        }
    }
    files.sort();
    Ok(files.into_iter().map(|(_, path)| fs::read(path)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_come_oldest_first_from_cur_and_new() {
        let dir = tempfile::tempdir().unwrap();
        for sub in ["cur", "new", "tmp"] {
            fs::create_dir(dir.path().join(sub)).unwrap();
        }
        let old = dir.path().join("new/2.host");
        fs::write(&old, "Subject: first\n\nuno").unwrap();
        let earlier = SystemTime::now() - std::time::Duration::from_secs(3600);
        fs::File::options()
            .write(true)
            .open(&old)
            .unwrap()
            .set_modified(earlier)
            .unwrap();
        fs::write(dir.path().join("cur/1.host:2,S"), "Subject: second\n\ndos").unwrap();
        fs::write(dir.path().join("tmp/3.host"), "Subject: half-written\n").unwrap();
        let all: Vec<String> = messages(dir.path())
            .unwrap()
            .map(|m| String::from_utf8(m.unwrap()).unwrap())
            .collect();
        assert_eq!(all.len(), 2, "tmp/ holds mail still being written");
        assert!(all[0].contains("first") && all[1].contains("second"), "{all:?}");
        assert!(messages(&dir.path().join("missing")).is_err());
    }
}
