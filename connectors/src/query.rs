//! The search language agents type, as syntax only: words that must all match, `"quoted
//! phrases"`, `word*` prefixes (at least [`MIN_PREFIX_CHARS`] characters), `-word` exclusions.
//! The hub turns the clauses into its index's query; the syntax lives here, beside the other
//! parsers of untrusted input, so it is fuzzed with them.

pub const MIN_PREFIX_CHARS: usize = 2;
pub const MAX_QUERY_CLAUSES: usize = 32;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum QueryError {
    #[error("the query has no words to search for")]
    Empty,
    #[error("a prefix search needs at least {MIN_PREFIX_CHARS} letters or digits before '*'")]
    ShortPrefix,
    #[error("the query has more than {MAX_QUERY_CLAUSES} words")]
    TooLong,
    #[error("a quoted phrase is not closed")]
    UnclosedQuote,
}

/// One part of the query as typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Clause {
    Word { text: String, negated: bool },
    Prefix { text: String, negated: bool },
    Phrase { text: String, negated: bool },
}

/// Splits what the agent typed into clauses.
pub fn parse(input: &str) -> Result<Vec<Clause>, QueryError> {
    let mut clauses = Vec::new();
    let mut rest = input.trim();
    while !rest.is_empty() {
        let (negated, body) = match rest.strip_prefix('-') {
            Some(b) if !b.starts_with(char::is_whitespace) && !b.is_empty() => (true, b),
            _ => (false, rest),
        };
        if let Some(after_quote) = body.strip_prefix('"') {
            let end = after_quote.find('"').ok_or(QueryError::UnclosedQuote)?;
            let text = after_quote[..end].to_owned();
            if !text.trim().is_empty() {
                clauses.push(Clause::Phrase { text, negated });
            }
            rest = after_quote[end + 1..].trim_start();
        } else {
            let end = body.find(char::is_whitespace).unwrap_or(body.len());
            let word = &body[..end];
            if let Some(prefix) = word.strip_suffix('*') {
                clauses.push(Clause::Prefix {
                    text: prefix.to_owned(),
                    negated,
                });
            } else {
                clauses.push(Clause::Word {
                    text: word.to_owned(),
                    negated,
                });
            }
            rest = body[end..].trim_start();
        }
        if clauses.len() > MAX_QUERY_CLAUSES {
            return Err(QueryError::TooLong);
        }
    }
    if clauses.iter().all(|c| {
        matches!(
            c,
            Clause::Word { negated: true, .. }
                | Clause::Prefix { negated: true, .. }
                | Clause::Phrase { negated: true, .. }
        )
    }) {
        return Err(QueryError::Empty);
    }
    Ok(clauses)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn word(t: &str) -> Clause {
        Clause::Word {
            text: t.into(),
            negated: false,
        }
    }

    #[test]
    fn words_phrases_prefixes_and_exclusions_are_told_apart() {
        assert_eq!(
            parse(r#"factura "no funciona" tel* -spam"#).unwrap(),
            vec![
                word("factura"),
                Clause::Phrase {
                    text: "no funciona".into(),
                    negated: false
                },
                Clause::Prefix {
                    text: "tel".into(),
                    negated: false
                },
                Clause::Word {
                    text: "spam".into(),
                    negated: true
                },
            ]
        );
    }

    #[test]
    fn queries_without_anything_to_find_are_refused() {
        assert_eq!(parse("   "), Err(QueryError::Empty));
        assert_eq!(parse("-spam"), Err(QueryError::Empty));
        assert_eq!(parse("\"open"), Err(QueryError::UnclosedQuote));
        assert_eq!(parse(&"a ".repeat(40)), Err(QueryError::TooLong));
    }
}
