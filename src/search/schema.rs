//! The index's fields and analysers.

use tantivy::schema::{
    FAST, Field, INDEXED, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing, TextOptions,
};
use tantivy::tokenizer::{
    AsciiFoldingFilter, LowerCaser, NgramTokenizer, RemoveLongFilter, SimpleTokenizer, TextAnalyzer,
};

/// Bumped whenever fields or analysers change; an index of another version is rebuilt.
pub const SCHEMA_VERSION: u32 = 1;

/// Case- and accent-insensitive words: `Teléfono` and `telefono` are one term.
pub const FOLDED: &str = "folded";
/// Every run of 4 to 15 digits of a phone number, so any part of it matches.
pub const DIGIT_NGRAMS: &str = "digit_ngrams";
pub const ID: &str = "id";
pub const OCCURRED_AT: &str = "occurred_at";
pub const MIN_PHONE_FRAGMENT: usize = 4;
pub const MAX_PHONE_DIGITS: usize = 15;

#[derive(Clone)]
pub struct Fields {
    pub id: Field,
    pub contact_id: Field,
    pub conversation_id: Field,
    pub channel_account_id: Field,
    pub channel: Field,
    pub direction: Field,
    pub agent_id: Field,
    pub occurred_at: Field,
    pub subject: Field,
    pub body: Field,
    pub addresses: Field,
    pub phone_digits: Field,
}

pub fn build() -> (Schema, Fields) {
    let mut s = Schema::builder();
    let text = |tokenizer: &str, positions: bool| {
        TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(tokenizer)
                .set_index_option(if positions {
                    IndexRecordOption::WithFreqsAndPositions
                } else {
                    IndexRecordOption::WithFreqs
                }),
        )
    };
    let fields = Fields {
        id: s.add_text_field(ID, STRING | STORED | FAST),
        contact_id: s.add_text_field("contact_id", STRING),
        conversation_id: s.add_text_field("conversation_id", STRING),
        channel_account_id: s.add_text_field("channel_account_id", STRING),
        channel: s.add_text_field("channel", STRING),
        direction: s.add_text_field("direction", STRING),
        agent_id: s.add_text_field("agent_id", STRING),
        occurred_at: s.add_i64_field(OCCURRED_AT, INDEXED | FAST),
        subject: s.add_text_field("subject", text(FOLDED, true)),
        body: s.add_text_field("body", text(FOLDED, true)),
        addresses: s.add_text_field("addresses", text(FOLDED, true)),
        phone_digits: s.add_text_field("phone_digits", text(DIGIT_NGRAMS, false)),
    };
    (s.build(), fields)
}

pub fn folded_analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(64))
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .build()
}

pub fn register(index: &tantivy::Index) {
    index.tokenizers().register(FOLDED, folded_analyzer());
    let ngrams = NgramTokenizer::all_ngrams(MIN_PHONE_FRAGMENT, MAX_PHONE_DIGITS).expect("valid ngram bounds");
    index
        .tokenizers()
        .register(DIGIT_NGRAMS, TextAnalyzer::builder(ngrams).build());
}
