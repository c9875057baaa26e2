//! The search language agents type, turned into a tantivy query.
//!
//! Words must all match (in subject, body or addresses); `"quoted words"` match as a phrase;
//! `word*` matches words starting with `word` (at least 2 characters, expanded to at most
//! [`MAX_PREFIX_TERMS`] terms per field, which keeps short prefixes from exploding into huge OR
//! queries); `-word` excludes. A run of 4+ digits also matches any part of a phone number.
//! Everything goes through the same folding analyser as the indexed text, so accents and case
//! never matter.
//!
//! The query is built in the flattest shape that means the same thing, because tantivy prunes
//! with Block-WAND only a bare union of terms (one word, a prefix) or a bare intersection; and a
//! lone phrase becomes a [`Ranked::Phrase`], ranked without reading every match's positions.
//! Filters are kept apart from what ranks (see [`super::collect`] for why).

use std::ops::Bound;

use tantivy::query::{BooleanQuery, EmptyQuery, Occur, PhraseQuery, Query, RangeQuery, TermQuery};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::{Searcher, Term};

use super::schema::{self, Fields};

pub const MAX_PREFIX_TERMS: usize = 64;
pub use switchboard_connectors::query::{Clause, MAX_QUERY_CLAUSES, MIN_PREFIX_CHARS, QueryError, parse};

/// Filters applied beside the text.
#[derive(Debug, Default, Clone)]
pub struct Filters {
    pub contact_id: Option<String>,
    pub channel: Option<String>,
    pub direction: Option<String>,
    pub channel_accounts: Option<Vec<String>>,
    /// Microseconds since the epoch, inclusive.
    pub from: Option<i64>,
    /// Microseconds since the epoch, exclusive.
    pub to: Option<i64>,
}

/// How a search is run: what ranks the matches, and what else they must satisfy.
pub struct Plan {
    pub ranked: Ranked,
    /// The filters, which match or not and add nothing to a score.
    pub filter: Option<Box<dyn Query>>,
}

/// What ranks the matches.
pub enum Ranked {
    /// The words, phrases and prefixes typed, as one query.
    Query(Box<dyn Query>),
    /// A lone phrase, as its terms in each text field. A document matches if the words follow
    /// each other in one field; it ranks by the words' scores in its best field.
    Phrase(Vec<Vec<Term>>),
}

/// Builds the plan for `clauses` and `filters` against the searcher's current segments.
pub fn build(searcher: &Searcher, fields: &Fields, clauses: &[Clause], filters: &Filters) -> Result<Plan, QueryError> {
    Ok(Plan {
        ranked: ranked(searcher, fields, clauses)?,
        filter: filter(fields, filters),
    })
}

fn ranked(searcher: &Searcher, fields: &Fields, clauses: &[Clause]) -> Result<Ranked, QueryError> {
    let analyzer_fields = [fields.subject, fields.body, fields.addresses];
    if let [Clause::Phrase { text, negated: false }] = clauses {
        let terms = analyze(text);
        if terms.len() > 1 {
            return Ok(Ranked::Phrase(
                analyzer_fields
                    .iter()
                    .map(|f| terms.iter().map(|t| Term::from_field_text(*f, t)).collect())
                    .collect(),
            ));
        }
    }
    let mut parts: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    for clause in clauses {
        let (query, negated): (Box<dyn Query>, bool) = match clause {
            Clause::Word { text, negated } => (word_query(fields, &analyzer_fields, text), *negated),
            Clause::Phrase { text, negated } => (phrase_query(&analyzer_fields, text), *negated),
            Clause::Prefix { text, negated } => (prefix_query(searcher, &analyzer_fields, text)?, *negated),
        };
        parts.push((if negated { Occur::MustNot } else { Occur::Must }, query));
    }
    // A single required clause is that clause: unwrapped, a union of terms stays prunable.
    if let [(Occur::Must, _)] = parts.as_slice() {
        return Ok(Ranked::Query(parts.pop().expect("one part").1));
    }
    Ok(Ranked::Query(Box::new(BooleanQuery::new(parts))))
}

fn filter(fields: &Fields, filters: &Filters) -> Option<Box<dyn Query>> {
    let mut parts: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    let exact = |field: Field, value: &str| -> Box<dyn Query> {
        Box::new(TermQuery::new(
            Term::from_field_text(field, value),
            IndexRecordOption::Basic,
        ))
    };
    if let Some(c) = &filters.contact_id {
        parts.push((Occur::Must, exact(fields.contact_id, c)));
    }
    if let Some(c) = &filters.channel {
        parts.push((Occur::Must, exact(fields.channel, c)));
    }
    if let Some(d) = &filters.direction {
        parts.push((Occur::Must, exact(fields.direction, d)));
    }
    if let Some(accounts) = &filters.channel_accounts {
        let any: Vec<(Occur, Box<dyn Query>)> = accounts
            .iter()
            .map(|a| (Occur::Should, exact(fields.channel_account_id, a)))
            .collect();
        parts.push((
            Occur::Must,
            if any.is_empty() {
                Box::new(EmptyQuery)
            } else {
                Box::new(BooleanQuery::new(any))
            },
        ));
    }
    if filters.from.is_some() || filters.to.is_some() {
        let lower = filters.from.map_or(Bound::Unbounded, |v| {
            Bound::Included(Term::from_field_i64(fields.occurred_at, v))
        });
        let upper = filters.to.map_or(Bound::Unbounded, |v| {
            Bound::Excluded(Term::from_field_i64(fields.occurred_at, v))
        });
        parts.push((Occur::Must, Box::new(RangeQuery::new(lower, upper))));
    }
    match parts.len() {
        0 => None,
        1 => parts.pop().map(|(_, only)| only),
        _ => Some(Box::new(BooleanQuery::new(parts))),
    }
}

fn analyze(text: &str) -> Vec<String> {
    let mut analyzer = schema::folded_analyzer();
    let mut stream = analyzer.token_stream(text);
    let mut out = Vec::new();
    while stream.advance() {
        out.push(stream.token().text.clone());
    }
    out
}

fn any_field(fields: &[Field], make: impl Fn(Field) -> Box<dyn Query>) -> Box<dyn Query> {
    Box::new(BooleanQuery::new(
        fields.iter().map(|f| (Occur::Should, make(*f))).collect(),
    ))
}

/// A term scored by its frequency (what Block-WAND needs).
fn scored_term(field: Field, text: &str) -> Box<dyn Query> {
    Box::new(TermQuery::new(
        Term::from_field_text(field, text),
        IndexRecordOption::WithFreqs,
    ))
}

/// One word in any text field, or a phone number containing its digits: a flat union of terms.
fn word_query(all: &Fields, fields: &[Field], text: &str) -> Box<dyn Query> {
    let terms = analyze(text);
    let mut alternatives: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    match terms.as_slice() {
        [] => {}
        [term] => alternatives.extend(fields.iter().map(|f| (Occur::Should, scored_term(*f, term)))),
        // "e-mail" or "ana@x.es" analyse into several words: they must follow each other.
        _ => alternatives.push((Occur::Should, phrase_of(fields, &terms))),
    }
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    let only_phone_chars = text.chars().all(|c| c.is_ascii_digit() || "+-(). ".contains(c));
    if only_phone_chars && digits.len() >= schema::MIN_PHONE_FRAGMENT {
        let tail = &digits[digits.len().saturating_sub(schema::MAX_PHONE_DIGITS)..];
        alternatives.push((Occur::Should, scored_term(all.phone_digits, tail)));
    }
    if alternatives.is_empty() {
        return Box::new(EmptyQuery);
    }
    Box::new(BooleanQuery::new(alternatives))
}

fn phrase_of(fields: &[Field], terms: &[String]) -> Box<dyn Query> {
    any_field(fields, |f| {
        Box::new(PhraseQuery::new(
            terms.iter().map(|t| Term::from_field_text(f, t)).collect(),
        ))
    })
}

fn phrase_query(fields: &[Field], text: &str) -> Box<dyn Query> {
    let terms = analyze(text);
    match terms.len() {
        0 => Box::new(EmptyQuery),
        1 => any_field(fields, |f| scored_term(f, &terms[0])),
        _ => phrase_of(fields, &terms),
    }
}

/// Expands `text*` into the first [`MAX_PREFIX_TERMS`] matching terms of each field.
fn prefix_query(searcher: &Searcher, fields: &[Field], text: &str) -> Result<Box<dyn Query>, QueryError> {
    let terms = analyze(text);
    let prefix = match terms.as_slice() {
        [one] if one.chars().count() >= MIN_PREFIX_CHARS => one.clone(),
        _ => return Err(QueryError::ShortPrefix),
    };
    let mut expansions: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    for &field in fields {
        let mut found: Vec<Vec<u8>> = Vec::new();
        for segment in searcher.segment_readers() {
            let Ok(inverted) = segment.inverted_index(field) else {
                continue;
            };
            let Ok(mut stream) = inverted.terms().range().ge(prefix.as_bytes()).into_stream() else {
                continue;
            };
            while found.len() < MAX_PREFIX_TERMS && stream.advance() {
                let key = stream.key();
                if !key.starts_with(prefix.as_bytes()) {
                    break;
                }
                if !found.iter().any(|k| k == key) {
                    found.push(key.to_vec());
                }
            }
        }
        for key in found {
            if let Ok(term) = std::str::from_utf8(&key) {
                expansions.push((Occur::Should, scored_term(field, term)));
            }
        }
    }
    Ok(if expansions.is_empty() {
        Box::new(EmptyQuery)
    } else {
        Box::new(BooleanQuery::new(expansions))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn analysis_folds_case_and_accents() {
        assert_eq!(analyze("Teléfono ÑANDÚ"), vec!["telefono", "nandu"]);
    }
}
