//! mbox files (a mailbox exported by Thunderbird, Gmail's Takeout or `mutt`): one message after
//! another, each starting with a `From ` line. The splitting, and the undoing of `>From `
//! quoting, are mail-parser's; this only hands out the raw messages.

use std::io::BufRead;

use mail_parser::mailbox::mbox::MessageIterator;

/// The raw messages of an mbox, in file order.
pub fn messages(reader: impl BufRead) -> impl Iterator<Item = std::io::Result<Vec<u8>>> {
    MessageIterator::new(reader).map(|m| m.map(|m| m.unwrap_contents()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_split_on_from_lines_and_quoted_from_is_restored() {
        let mbox = b"From ana@example.es Mon Mar  2 10:00:00 2026\n\
Subject: uno\n\n>From the start, hola\n\n\
From bea@example.es Mon Mar  2 11:00:00 2026\n\
Subject: dos\n\nadios\n";
        let all: Vec<Vec<u8>> = messages(&mbox[..]).collect::<Result<_, _>>().unwrap();
        assert_eq!(all.len(), 2);
        let first = String::from_utf8(all[0].clone()).unwrap();
        assert!(
            first.starts_with("Subject: uno") && first.contains("\nFrom the start, hola"),
            "{first}"
        );
        assert!(String::from_utf8_lossy(&all[1]).contains("adios"));
    }
}
