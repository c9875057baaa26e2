//! The best hits of a [`Plan`] and how many documents it matches, read from tantivy's weights.
//!
//! Equal scores are ordered newest first, then by id, so that a ranking never depends on how
//! the index happens to be split into segments (it must survive a rebuild). Tantivy's own
//! collector for such a key visits every match; [`top`] instead lets the weight skip whatever
//! cannot reach the current k-th best score (Block-WAND), while still seeing every document that
//! ties it, and orders what it sees by the whole key. Counting every match of a common phrase
//! costs as much as ranking it, so [`count`] can stop at a limit.

use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap};

use tantivy::columnar::{Column, StrColumn};
use tantivy::query::{BooleanQuery, BoostQuery, EnableScoring, Occur, PhraseQuery, Query, Scorer, TermQuery, Weight};
use tantivy::schema::IndexRecordOption;
use tantivy::{DocId, DocSet, Score, Searcher, SegmentReader, TERMINATED};

use super::query::{Plan, Ranked};
use super::schema;

/// One ranked document.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub id: String,
    pub score: Score,
}

/// How many documents a plan matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Total {
    pub count: usize,
    /// False when counting stopped at its limit: there are more.
    pub exact: bool,
}

/// How a filtered search walks its matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Drive {
    /// Rank the text with pruning, checking the filters only on documents good enough to enter
    /// the top: best when the filters keep much of what the text matches.
    Text,
    /// Walk what text and filters match together and rank all of it: best when the filters keep
    /// little (one contact's history), since pruning would look through many documents the
    /// filters then refuse.
    Filters,
}

/// Filters expected to keep less than one in this many of the text's matches drive the search
/// (measured at 10M: a contact holding 3 % of all history is still faster driven by the text).
const SELECTIVE: u64 = 128;

/// The hits ranked `offset..offset + limit`.
pub fn top(searcher: &Searcher, plan: &Plan, limit: usize, offset: usize) -> tantivy::Result<Vec<Hit>> {
    top_driven(searcher, plan, limit, offset, drive(searcher, plan)?)
}

/// How to walk `plan`'s matches, from estimates of how many documents each side holds: the
/// text by its most frequent term (a union's buffered scorer cannot tell its size), the filters
/// by tantivy's own estimate. Chosen once per search, not per segment, so that every segment
/// sums scores the same way.
fn drive(searcher: &Searcher, plan: &Plan) -> tantivy::Result<Drive> {
    let Some(filter) = &plan.filter else {
        return Ok(Drive::Text);
    };
    let mut terms = Vec::new();
    match &plan.ranked {
        Ranked::Query(query) => query.query_terms(&mut |term, _| terms.push(term.clone())),
        Ranked::Phrase(per_field) => terms.extend(per_field.iter().flatten().cloned()),
    }
    let mut text = 0;
    for term in &terms {
        text = text.max(searcher.doc_freq(term)?);
    }
    let weight = filter.weight(EnableScoring::enabled_from_searcher(searcher))?;
    let mut filtered = 0;
    for reader in searcher.segment_readers() {
        filtered += u64::from(weight.scorer(reader, 1.0)?.size_hint());
    }
    Ok(if filtered.saturating_mul(SELECTIVE) < text {
        Drive::Filters
    } else {
        Drive::Text
    })
}

/// [`top`], walking the matches as told.
fn top_driven(
    searcher: &Searcher,
    plan: &Plan,
    limit: usize,
    offset: usize,
    drive: Drive,
) -> tantivy::Result<Vec<Hit>> {
    let capacity = limit + offset;
    let passes = passes(searcher, plan, drive)?;
    let mut best = Best::new(capacity);
    for (ord, reader) in searcher.segment_readers().iter().enumerate() {
        let keys = SegmentKeys::open(reader)?;
        let alive = reader.alive_bitset();
        let mut local = SegmentBest::new(capacity, best.worst_if_full().map(|w| (w.score, w.occurred_at)));
        for Pass { ranked, must_hold } in &passes {
            let mut must_hold = must_hold
                .iter()
                .map(|w| w.scorer(reader, 1.0))
                .collect::<tantivy::Result<Vec<_>>>()?;
            ranked.for_each_pruning(local.threshold(), reader, &mut |doc, score| {
                if alive.is_none_or(|a| a.is_alive(doc))
                    && let Some(key) = local.key_if_wanted(&keys, doc, score)
                    && must_hold.iter_mut().all(|m| holds(m.as_mut(), doc))
                {
                    local.insert(key);
                }
                local.threshold()
            })?;
        }
        best.merge(ord as u32, &keys, local);
    }
    Ok(best.into_ranked().into_iter().skip(offset).collect())
}

/// One walk over a segment: what ranks the documents, and what must also hold for them.
struct Pass<R> {
    ranked: R,
    must_hold: Vec<Box<dyn Weight>>,
}

/// The walks `plan` takes over each segment. Every document holding all the words of a common
/// phrase is a candidate, and reading all their positions is what makes a phrase slow: the
/// words' intersection (one pass per field) is pruned like any other query, and positions are
/// read only for documents good enough to enter the top.
fn passes(searcher: &Searcher, plan: &Plan, drive: Drive) -> tantivy::Result<Vec<Pass<Box<dyn Weight>>>> {
    let unscored = EnableScoring::disabled_from_searcher(searcher);
    let mut passes: Vec<Pass<Box<dyn Query>>> = match &plan.ranked {
        Ranked::Query(query) => vec![Pass {
            ranked: query.box_clone(),
            must_hold: Vec::new(),
        }],
        Ranked::Phrase(per_field) => per_field
            .iter()
            .map(|terms| {
                Ok(Pass {
                    ranked: Box::new(all_of(terms)) as Box<dyn Query>,
                    must_hold: vec![PhraseQuery::new(terms.clone()).weight(unscored)?],
                })
            })
            .collect::<tantivy::Result<_>>()?,
    };
    if let Some(filter) = &plan.filter {
        for pass in &mut passes {
            match drive {
                Drive::Text => pass.must_hold.push(filter.weight(unscored)?),
                Drive::Filters => {
                    let scoring_nothing = BoostQuery::new(filter.box_clone(), 0.0);
                    pass.ranked = Box::new(BooleanQuery::new(vec![
                        (Occur::Must, pass.ranked.box_clone()),
                        (Occur::Must, Box::new(scoring_nothing)),
                    ]));
                }
            }
        }
    }
    let scoring = EnableScoring::enabled_from_searcher(searcher);
    passes
        .into_iter()
        .map(|pass| {
            Ok(Pass {
                ranked: pass.ranked.weight(scoring)?,
                must_hold: pass.must_hold,
            })
        })
        .collect()
}

/// Whether `doc`, at or past where `matches` stands, is one of its matches.
fn holds(matches: &mut dyn Scorer, doc: DocId) -> bool {
    if matches.doc() < doc {
        matches.seek(doc);
    }
    matches.doc() == doc
}

/// Counts the plan's matches, stopping past `limit` if there is one.
pub fn count(searcher: &Searcher, plan: &Plan, limit: Option<usize>) -> tantivy::Result<Total> {
    let text: Box<dyn Query> = match &plan.ranked {
        Ranked::Query(query) => query.box_clone(),
        Ranked::Phrase(per_field) => Box::new(BooleanQuery::new(
            per_field
                .iter()
                .map(|terms| {
                    (
                        Occur::Should,
                        Box::new(PhraseQuery::new(terms.clone())) as Box<dyn Query>,
                    )
                })
                .collect(),
        )),
    };
    let query: Box<dyn Query> = match &plan.filter {
        None => text,
        Some(filter) => Box::new(BooleanQuery::new(vec![
            (Occur::Must, text),
            (Occur::Must, filter.box_clone()),
        ])),
    };
    let weight = query.weight(EnableScoring::disabled_from_searcher(searcher))?;
    let mut count = 0;
    for reader in searcher.segment_readers() {
        let Some(limit) = limit else {
            count += weight.count(reader)? as usize;
            continue;
        };
        let alive = reader.alive_bitset();
        let mut matches = weight.scorer(reader, 1.0)?;
        let mut doc = matches.doc();
        while doc != TERMINATED {
            if alive.is_none_or(|a| a.is_alive(doc)) {
                if count == limit {
                    return Ok(Total { count, exact: false });
                }
                count += 1;
            }
            doc = matches.advance();
        }
    }
    Ok(Total { count, exact: true })
}

/// Documents holding every one of `terms`, scored as the sum of their scores.
fn all_of(terms: &[tantivy::Term]) -> BooleanQuery {
    BooleanQuery::new(
        terms
            .iter()
            .map(|t| {
                let term = TermQuery::new(t.clone(), IndexRecordOption::WithFreqs);
                (Occur::Must, Box::new(term) as Box<dyn Query>)
            })
            .collect(),
    )
}

/// What equal scores are ordered by, for one segment.
struct SegmentKeys {
    occurred_at: Column<i64>,
    ids: Option<StrColumn>,
}

impl SegmentKeys {
    fn open(reader: &SegmentReader) -> tantivy::Result<Self> {
        let fast = reader.fast_fields();
        Ok(Self {
            occurred_at: fast.i64(schema::OCCURRED_AT)?,
            ids: fast.str(schema::ID)?,
        })
    }

    fn occurred_at(&self, doc: DocId) -> i64 {
        self.occurred_at.first(doc).unwrap_or(i64::MIN)
    }

    /// The id's place in the segment's sorted dictionary: ordered as the ids themselves are.
    fn id_ord(&self, doc: DocId) -> u64 {
        self.ids.as_ref().and_then(|ids| ids.term_ords(doc).next()).unwrap_or(0)
    }

    fn id(&self, ord: u64) -> String {
        let mut id = String::new();
        if let Some(ids) = &self.ids {
            // A read error leaves the id empty: the hit is then dropped when it is resolved.
            let _ = ids.ord_to_str(ord, &mut id);
        }
        id
    }
}

/// `PartialOrd`, `PartialEq` and `Eq` from the type's `Ord`.
macro_rules! ordered_by_cmp {
    ($t:ty) => {
        impl PartialOrd for $t {
            fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
                Some(self.cmp(other))
            }
        }

        impl PartialEq for $t {
            fn eq(&self, other: &Self) -> bool {
                self.cmp(other).is_eq()
            }
        }

        impl Eq for $t {}
    };
}

fn cmp_head(a: (Score, i64), b: (Score, i64)) -> Ordering {
    a.0.total_cmp(&b.0).then(a.1.cmp(&b.1))
}

/// A document's place in one segment's ranking; greater is better.
#[derive(Debug, Clone, Copy)]
struct LocalKey {
    score: Score,
    occurred_at: i64,
    id_ord: u64,
    doc: DocId,
}

impl Ord for LocalKey {
    fn cmp(&self, other: &Self) -> Ordering {
        cmp_head((self.score, self.occurred_at), (other.score, other.occurred_at))
            .then(self.id_ord.cmp(&other.id_ord))
            .then(other.doc.cmp(&self.doc))
    }
}

ordered_by_cmp!(LocalKey);

/// The best documents of one segment, each once (a phrase offers a document once per field it
/// matches in, and keeps its best score). Ids are compared by their order in the segment's
/// dictionary, so no id is read until the segment is done.
struct SegmentBest {
    capacity: usize,
    /// The worst (score, time) of the best found in earlier segments, once there are enough.
    floor: Option<(Score, i64)>,
    ranked: BTreeSet<LocalKey>,
    placed: HashMap<DocId, LocalKey>,
}

impl SegmentBest {
    fn new(capacity: usize, floor: Option<(Score, i64)>) -> Self {
        Self {
            capacity,
            floor,
            ranked: BTreeSet::new(),
            placed: HashMap::new(),
        }
    }

    fn worst_if_full(&self) -> Option<&LocalKey> {
        (self.ranked.len() >= self.capacity)
            .then(|| self.ranked.first())
            .flatten()
    }

    /// The score a document must exceed to be offered: just under the k-th best, so that a tie
    /// with it is still seen and ordered by time and id.
    fn threshold(&self) -> Score {
        let local = self.worst_if_full().map(|w| w.score);
        match (self.floor.map(|f| f.0), local) {
            (None, None) => Score::MIN,
            (a, b) => a.into_iter().chain(b).fold(Score::MIN, Score::max).next_down(),
        }
    }

    /// `doc`'s key, if it could enter the top.
    fn key_if_wanted(&self, keys: &SegmentKeys, doc: DocId, score: Score) -> Option<LocalKey> {
        if self.capacity == 0 {
            return None;
        }
        let occurred_at = keys.occurred_at(doc);
        let beaten = |head| cmp_head((score, occurred_at), head).is_lt();
        if self.floor.is_some_and(beaten) || self.worst_if_full().is_some_and(|w| beaten((w.score, w.occurred_at))) {
            return None;
        }
        let key = LocalKey {
            score,
            occurred_at,
            id_ord: keys.id_ord(doc),
            doc,
        };
        (self.worst_if_full().is_none_or(|w| key > *w)).then_some(key)
    }

    fn insert(&mut self, key: LocalKey) {
        if let Some(placed) = self.placed.get(&key.doc) {
            if *placed >= key {
                return;
            }
            self.ranked.remove(placed);
        }
        self.placed.insert(key.doc, key);
        self.ranked.insert(key);
        if self.ranked.len() > self.capacity
            && let Some(out) = self.ranked.pop_first()
        {
            self.placed.remove(&out.doc);
        }
    }
}

/// A document's place in the whole ranking; greater is better.
#[derive(Debug, Clone)]
struct GlobalKey {
    score: Score,
    occurred_at: i64,
    id: String,
    /// (segment, document): the last word between equal ids.
    address: (u32, DocId),
}

impl Ord for GlobalKey {
    fn cmp(&self, other: &Self) -> Ordering {
        cmp_head((self.score, self.occurred_at), (other.score, other.occurred_at))
            .then_with(|| self.id.cmp(&other.id))
            .then_with(|| other.address.cmp(&self.address))
    }
}

ordered_by_cmp!(GlobalKey);

/// The best `capacity` documents of the segments merged so far.
struct Best {
    capacity: usize,
    ranked: BTreeSet<GlobalKey>,
}

impl Best {
    fn new(capacity: usize) -> Self {
        Self {
            capacity,
            ranked: BTreeSet::new(),
        }
    }

    fn worst_if_full(&self) -> Option<&GlobalKey> {
        (self.ranked.len() >= self.capacity)
            .then(|| self.ranked.first())
            .flatten()
    }

    /// Adds a segment's best, reading the ids of those that may enter.
    fn merge(&mut self, segment: u32, keys: &SegmentKeys, local: SegmentBest) {
        for key in local.ranked.into_iter().rev() {
            if self
                .worst_if_full()
                .is_some_and(|w| cmp_head((key.score, key.occurred_at), (w.score, w.occurred_at)).is_lt())
            {
                break;
            }
            self.ranked.insert(GlobalKey {
                score: key.score,
                occurred_at: key.occurred_at,
                id: keys.id(key.id_ord),
                address: (segment, key.doc),
            });
            if self.ranked.len() > self.capacity {
                self.ranked.pop_first();
            }
        }
    }

    fn into_ranked(self) -> Vec<Hit> {
        self.ranked
            .into_iter()
            .rev()
            .map(|r| Hit {
                id: r.id,
                score: r.score,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use tantivy::collector::sort_key::{SortBySimilarityScore, SortByStaticFastValue, SortByString};
    use tantivy::collector::{Count, TopDocs};
    use tantivy::{Index, Order, TantivyDocument, Term};

    use super::*;
    use crate::search::query::{self, Filters};
    use crate::search::schema::{self, Fields};

    /// An index of `docs` (subject, body) split into several segments, with a few deleted, whose
    /// scores and times tie often: few distinct texts and four distinct times.
    fn index(docs: &[(&str, &str)]) -> (Index, Fields) {
        let (schema, fields) = schema::build();
        let index = Index::create_in_ram(schema);
        schema::register(&index);
        let mut writer: tantivy::IndexWriter = index.writer_with_num_threads(1, 15_000_000).unwrap();
        writer.set_merge_policy(Box::new(tantivy::indexer::NoMergePolicy));
        for (n, (subject, body)) in docs.iter().enumerate() {
            let mut doc = TantivyDocument::default();
            doc.add_text(fields.id, format!("id-{:05}", (n * 7919) % 100_000));
            doc.add_text(fields.contact_id, format!("contact-{}", n % 3));
            doc.add_i64(fields.occurred_at, (n % 4) as i64);
            doc.add_text(fields.subject, subject);
            doc.add_text(fields.body, body);
            writer.add_document(doc).unwrap();
            // Segments of several posting blocks (128 documents each), which pruning skips.
            if n % 487 == 486 {
                writer.commit().unwrap();
            }
        }
        writer.commit().unwrap();
        for n in (0..docs.len()).step_by(13) {
            writer.delete_term(Term::from_field_text(
                fields.id,
                &format!("id-{:05}", (n * 7919) % 100_000),
            ));
        }
        writer.commit().unwrap();
        (index, fields)
    }

    fn corpus() -> Vec<(&'static str, &'static str)> {
        let subjects = ["pedido", "factura", "", "pedido urgente"];
        let bodies = [
            "mi pedido no llega",
            "pedido pedido pedido",
            "la factura del pedido",
            "la dirección de envío es otra",
            "envío de la dirección",
            "cambio de dirección de envío y de pedido",
            "facturación",
            "nada que ver",
        ];
        (0..3_000)
            .map(|n| (subjects[n % subjects.len()], bodies[(n / 3) % bodies.len()]))
            .collect()
    }

    /// Tantivy's own collector for the whole key: it sees every match.
    fn exhaustive(searcher: &Searcher, query: &dyn Query, limit: usize, offset: usize) -> Vec<Hit> {
        let ranking = TopDocs::with_limit(limit).and_offset(offset).order_by((
            (SortBySimilarityScore, Order::Desc),
            (
                SortByStaticFastValue::<i64>::for_field(schema::OCCURRED_AT),
                Order::Desc,
            ),
            (SortByString::for_field(schema::ID), Order::Desc),
        ));
        searcher
            .search(query, &ranking)
            .unwrap()
            .into_iter()
            .map(|((score, _, id), _)| Hit { id: id.unwrap(), score })
            .collect()
    }

    fn plan(searcher: &Searcher, fields: &Fields, text: &str, filters: &Filters) -> Plan {
        query::build(searcher, fields, &query::parse(text).unwrap(), filters).unwrap()
    }

    #[test]
    fn pruned_ranking_equals_tantivys_exhaustive_sort_by_score_time_and_id() {
        let (index, fields) = index(&corpus());
        let searcher = index.reader().unwrap().searcher();
        assert!(searcher.segment_readers().len() > 5, "several segments");
        for text in ["pedido", "PEDÍDO", "fact*", "factura pedido", "pedido -factura"] {
            let plan = plan(&searcher, &fields, text, &Filters::default());
            let Ranked::Query(query) = &plan.ranked else {
                panic!("{text}: not a phrase");
            };
            for (limit, offset) in [(1, 0), (20, 0), (20, 40), (100, 7), (2_000, 0)] {
                let ours = top(&searcher, &plan, limit, offset).unwrap();
                let theirs = exhaustive(&searcher, query.as_ref(), limit, offset);
                assert!(!theirs.is_empty(), "{text}");
                assert_eq!(ours, theirs, "{text}, limit {limit}, offset {offset}");
            }
        }
    }

    #[test]
    fn filters_keep_what_they_keep_and_rank_alike_whichever_side_drives() {
        let (index, fields) = index(&corpus());
        let searcher = index.reader().unwrap().searcher();
        let contact = Filters {
            contact_id: Some("contact-1".into()),
            ..Filters::default()
        };
        let recent = Filters {
            from: Some(2),
            ..Filters::default()
        };
        for (text, filters) in [
            ("pedido", &contact),
            ("fact*", &recent),
            ("\"dirección de envío\"", &contact),
            ("pedido -factura", &recent),
        ] {
            let filtered = plan(&searcher, &fields, text, filters);
            let unfiltered = plan(&searcher, &fields, text, &Filters::default());
            let kept = |hit: &Hit| {
                let n: usize = hit.id[3..].parse().unwrap();
                let doc = (0..3_000).find(|d| (d * 7919) % 100_000 == n).unwrap();
                match (&filters.contact_id, filters.from) {
                    (Some(_), _) => doc % 3 == 1,
                    (None, Some(from)) => (doc % 4) as i64 >= from,
                    _ => true,
                }
            };
            // The unfiltered ranking, what the filters keep of it.
            let expected: Vec<Hit> = top(&searcher, &unfiltered, 3_000, 0)
                .unwrap()
                .into_iter()
                .filter(kept)
                .collect();
            assert!(expected.len() > 100, "{text}: {}", expected.len());
            for drive in [Drive::Text, Drive::Filters] {
                for (limit, offset) in [(1, 0), (20, 0), (20, 40), (3_000, 0)] {
                    let ours = top_driven(&searcher, &filtered, limit, offset, drive).unwrap();
                    let ids = |hits: &[Hit]| hits.iter().map(|h| h.id.clone()).collect::<Vec<_>>();
                    let wanted: Vec<Hit> = expected.iter().skip(offset).take(limit).cloned().collect();
                    assert_eq!(
                        ids(&ours),
                        ids(&wanted),
                        "{text}, {drive:?}, limit {limit}, offset {offset}"
                    );
                }
            }
            assert_eq!(
                count(&searcher, &filtered, None).unwrap(),
                Total {
                    count: expected.len(),
                    exact: true
                },
                "{text}"
            );
        }
        let pedido_of_one_contact = plan(&searcher, &fields, "pedido", &contact);
        assert_eq!(
            drive(&searcher, &pedido_of_one_contact).unwrap(),
            Drive::Text,
            "a third is not selective"
        );
        let nobody = Filters {
            contact_id: Some("contact-9".into()),
            ..Filters::default()
        };
        let pedido_of_nobody = plan(&searcher, &fields, "pedido", &nobody);
        assert_eq!(drive(&searcher, &pedido_of_nobody).unwrap(), Drive::Filters);
        assert!(top(&searcher, &pedido_of_nobody, 20, 0).unwrap().is_empty());
    }

    #[test]
    fn a_phrase_finds_only_its_words_in_order_ranked_by_its_best_field() {
        let (index, fields) = index(&corpus());
        let searcher = index.reader().unwrap().searcher();
        let phrase = plan(&searcher, &fields, "\"Dirección de ENVÍO\"", &Filters::default());
        let Ranked::Phrase(per_field) = &phrase.ranked else {
            panic!("a lone phrase is a phrase plan");
        };
        // Reference: in each field, the words' intersection restricted to the phrase (which adds
        // nothing to the score), every match ranked; a document keeps its best field.
        let mut reference: HashMap<String, Hit> = HashMap::new();
        for terms in per_field {
            let restricted = BooleanQuery::new(vec![
                (Occur::Must, Box::new(all_of(terms)) as Box<dyn Query>),
                (
                    Occur::Must,
                    Box::new(BoostQuery::new(Box::new(PhraseQuery::new(terms.clone())), 0.0)),
                ),
            ]);
            for hit in exhaustive(&searcher, &restricted, 10_000, 0) {
                let best = reference.entry(hit.id.clone()).or_insert(hit.clone());
                if hit.score > best.score {
                    *best = hit;
                }
            }
        }
        let mut reference: Vec<Hit> = reference.into_values().collect();
        let time = |id: &str| {
            let n: usize = id[3..].parse().unwrap();
            let doc = (0..3_000).find(|d| (d * 7919) % 100_000 == n).unwrap();
            (doc % 4) as i64
        };
        reference.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then(time(&b.id).cmp(&time(&a.id)))
                .then(b.id.cmp(&a.id))
        });
        // "cambio de dirección de envío" and "la dirección de envío", never "envío de la dirección".
        let holding = corpus()
            .iter()
            .enumerate()
            .filter(|(n, (_, body))| n % 13 != 0 && body.contains("dirección de envío"))
            .count();
        assert_eq!(reference.len(), holding);

        for (limit, offset) in [(1, 0), (20, 0), (30, 100), (1_000, 0)] {
            let ours = top(&searcher, &phrase, limit, offset).unwrap();
            let expected: Vec<&str> = reference
                .iter()
                .skip(offset)
                .take(limit)
                .map(|h| h.id.as_str())
                .collect();
            assert_eq!(
                ours.iter().map(|h| h.id.as_str()).collect::<Vec<_>>(),
                expected,
                "limit {limit}, offset {offset}"
            );
        }
        let total = count(&searcher, &phrase, None).unwrap();
        assert_eq!(
            total,
            Total {
                count: reference.len(),
                exact: true
            }
        );
    }

    #[test]
    fn counting_stops_past_its_limit_and_says_so() {
        let (index, fields) = index(&corpus());
        let searcher = index.reader().unwrap().searcher();
        let pedido = plan(&searcher, &fields, "pedido", &Filters::default());
        let Ranked::Query(query) = &pedido.ranked else { panic!() };
        let all = searcher.search(query.as_ref(), &Count).unwrap();
        assert!(all > 100, "{all}");

        assert_eq!(
            count(&searcher, &pedido, None).unwrap(),
            Total {
                count: all,
                exact: true
            }
        );
        assert_eq!(
            count(&searcher, &pedido, Some(all)).unwrap(),
            Total {
                count: all,
                exact: true
            }
        );
        assert_eq!(
            count(&searcher, &pedido, Some(all - 1)).unwrap(),
            Total {
                count: all - 1,
                exact: false
            }
        );
        assert_eq!(
            count(&searcher, &pedido, Some(10)).unwrap(),
            Total {
                count: 10,
                exact: false
            }
        );
    }
}
