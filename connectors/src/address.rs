//! Handles: the addresses by which a person is known on a channel. Each type parses its input
//! once at the edge into a canonical form, so two spellings of one address compare equal and the
//! hub never handles a raw string for an address.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Why an address could not be parsed.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum AddressError {
    #[error("not a valid email address")]
    Email,
    #[error("not a valid phone number")]
    Phone,
    #[error("unknown region {0:?}: expected an ISO 3166 alpha-2 code such as ES or US")]
    Region(String),
    #[error("not a valid visitor id")]
    Visitor,
    #[error("external id must be 1 to 255 printable characters")]
    External,
    #[error("unknown handle kind {0:?}: expected email, phone, visitor or external")]
    Kind(String),
}

/// An email address, lower-cased as a whole.
///
/// Local parts are case-sensitive in theory (RFC 5321 §2.4) but not in practice: every mail
/// system our customers write from treats them case-insensitively, and two contacts for
/// `Ana@x.es` and `ana@x.es` is exactly the duplicate we exist to prevent.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct EmailAddress(String);

impl EmailAddress {
    pub fn parse(input: &str) -> Result<Self, AddressError> {
        let trimmed = input.trim();
        let trimmed = trimmed.strip_prefix("mailto:").unwrap_or(trimmed);
        let lowered = trimmed.to_lowercase();
        email_address::EmailAddress::from_str(&lowered).map_err(|_| AddressError::Email)?;
        Ok(Self(lowered))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for EmailAddress {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// The region a phone number written without a country code is read in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Region(phonenumber::country::Id);

impl Region {
    pub fn parse(code: &str) -> Result<Self, AddressError> {
        phonenumber::country::Id::from_str(&code.trim().to_ascii_uppercase())
            .map(Self)
            .map_err(|_| AddressError::Region(code.to_owned()))
    }
}

impl<'de> Deserialize<'de> for Region {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// A phone number in E.164 form (`+34600123456`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct PhoneNumber(String);

/// Numbers parsed lately, by spelling and region, valid or not. phonenumber's parsing and
/// validation run its regexes, a fourteenth of the CPU of an SMS webhook; the same spellings
/// come back all the time (our own number in every SMS's `To`, a caller's every call).
static PARSED: std::sync::LazyLock<std::sync::Mutex<Memo>> = std::sync::LazyLock::new(Default::default);
type Memo = HashMap<(String, Region), Option<PhoneNumber>>;
/// Spellings kept before the memo starts again from empty.
const PARSED_KEPT: usize = 8_192;

impl PhoneNumber {
    /// Parses a number in any common spelling: `+34 600 12 34 56`, `0034600123456` (the
    /// default region's international prefix), or `600123456` read in `default_region`.
    pub fn parse(input: &str, default_region: Region) -> Result<Self, AddressError> {
        let trimmed = input.trim();
        let trimmed = trimmed.strip_prefix("tel:").unwrap_or(trimmed);
        if trimmed.is_empty() || trimmed.len() > 40 {
            return Err(AddressError::Phone);
        }
        let key = (trimmed.to_owned(), default_region);
        if let Some(known) = PARSED.lock().ok().and_then(|memo| memo.get(&key).cloned()) {
            return known.ok_or(AddressError::Phone);
        }
        let parsed = phonenumber::parse(Some(default_region.0), trimmed)
            .ok()
            .filter(phonenumber::is_valid)
            .map(|number| Self(number.format().mode(phonenumber::Mode::E164).to_string()));
        if let Ok(mut memo) = PARSED.lock() {
            if memo.len() >= PARSED_KEPT {
                memo.clear();
            }
            memo.insert(key, parsed.clone());
        }
        parsed.ok_or(AddressError::Phone)
    }

    /// Accepts a value that is already canonical E.164, as read back from the store.
    pub fn from_e164(e164: &str) -> Result<Self, AddressError> {
        let digits = e164.strip_prefix('+').ok_or(AddressError::Phone)?;
        if (2..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(e164.to_owned()))
        } else {
            Err(AddressError::Phone)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The digits without the leading `+`, as indexed for partial-number search.
    pub fn digits(&self) -> &str {
        &self.0[1..]
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The kinds of handle a contact can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HandleKind {
    Email,
    Phone,
    Visitor,
    External,
}

impl HandleKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Phone => "phone",
            Self::Visitor => "visitor",
            Self::External => "external",
        }
    }
}

impl FromStr for HandleKind {
    type Err = AddressError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "email" => Ok(Self::Email),
            "phone" => Ok(Self::Phone),
            "visitor" => Ok(Self::Visitor),
            "external" => Ok(Self::External),
            other => Err(AddressError::Kind(other.to_owned())),
        }
    }
}

/// One way of reaching a person: the key by which the hub finds their contact.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Handle {
    Email(EmailAddress),
    Phone(PhoneNumber),
    /// A web-chat visitor id issued by the hub.
    Visitor(uuid::Uuid),
    /// An id in an external system, namespaced by the caller (`crm:4711`).
    External(String),
}

impl Handle {
    pub fn kind(&self) -> HandleKind {
        match self {
            Self::Email(_) => HandleKind::Email,
            Self::Phone(_) => HandleKind::Phone,
            Self::Visitor(_) => HandleKind::Visitor,
            Self::External(_) => HandleKind::External,
        }
    }

    /// The canonical value, as stored and compared.
    pub fn value(&self) -> String {
        match self {
            Self::Email(e) => e.as_str().to_owned(),
            Self::Phone(p) => p.as_str().to_owned(),
            Self::Visitor(v) => v.to_string(),
            Self::External(x) => x.clone(),
        }
    }

    /// Parses a handle of the given kind from outside input.
    pub fn parse(kind: HandleKind, input: &str, region: Region) -> Result<Self, AddressError> {
        match kind {
            HandleKind::Email => EmailAddress::parse(input).map(Self::Email),
            HandleKind::Phone => PhoneNumber::parse(input, region).map(Self::Phone),
            HandleKind::Visitor => uuid::Uuid::parse_str(input.trim())
                .map(Self::Visitor)
                .map_err(|_| AddressError::Visitor),
            HandleKind::External => {
                let v = input.trim();
                if v.is_empty() || v.len() > 255 || v.chars().any(char::is_control) {
                    Err(AddressError::External)
                } else {
                    Ok(Self::External(v.to_owned()))
                }
            }
        }
    }

    /// Rebuilds a handle from its canonical stored form.
    pub fn from_stored(kind: HandleKind, value: &str) -> Result<Self, AddressError> {
        match kind {
            HandleKind::Phone => PhoneNumber::from_e164(value).map(Self::Phone),
            HandleKind::Email => Ok(Self::Email(EmailAddress(value.to_owned()))),
            other => Self::parse(other, value, Region(phonenumber::country::Id::US)),
        }
    }
}

impl fmt::Display for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind().as_str(), self.value())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn es() -> Region {
        Region::parse("es").unwrap()
    }

    #[test]
    fn every_common_spelling_of_a_spanish_mobile_is_one_number() {
        for spelling in [
            "+34 600 12 34 56",
            "0034600123456",
            "600123456",
            "600-12-34-56",
            "(+34) 600.123.456",
            "tel:+34600123456",
        ] {
            assert_eq!(
                PhoneNumber::parse(spelling, es()).unwrap().as_str(),
                "+34600123456",
                "{spelling}"
            );
        }
    }

    #[test]
    fn a_number_with_its_own_country_code_ignores_the_default_region() {
        let n = PhoneNumber::parse("+1 (415) 555-2671", es()).unwrap();
        assert_eq!(n.as_str(), "+14155552671");
        assert_eq!(n.digits(), "14155552671");
    }

    #[test]
    fn garbage_and_impossible_numbers_are_refused() {
        for bad in ["", "abc", "12", "+34 12", &"9".repeat(60)] {
            assert_eq!(PhoneNumber::parse(bad, es()), Err(AddressError::Phone), "{bad:?}");
        }
    }

    #[test]
    fn a_remembered_spelling_is_read_again_in_its_own_region() {
        let us = Region::parse("us").unwrap();
        for _ in 0..2 {
            assert_eq!(PhoneNumber::parse("600123456", es()).unwrap().as_str(), "+34600123456");
            assert_eq!(PhoneNumber::parse("2015550123", us).unwrap().as_str(), "+12015550123");
            // The same digits are no number in Spain, and remembered as none.
            assert_eq!(PhoneNumber::parse("2015550123", es()), Err(AddressError::Phone));
            assert_eq!(PhoneNumber::parse("600123456", us), Err(AddressError::Phone));
        }
    }

    #[test]
    fn emails_are_trimmed_and_lower_cased() {
        assert_eq!(
            EmailAddress::parse("  Ana.Garcia@Example.ES ").unwrap().as_str(),
            "ana.garcia@example.es"
        );
        assert_eq!(EmailAddress::parse("mailto:x@y.org").unwrap().as_str(), "x@y.org");
        for bad in ["", "no-at-sign", "a@", "@b.c", "a b@c.d"] {
            assert_eq!(EmailAddress::parse(bad), Err(AddressError::Email), "{bad:?}");
        }
    }

    #[test]
    fn unknown_regions_and_kinds_are_named_in_the_error() {
        assert_eq!(Region::parse("XX").unwrap_err(), AddressError::Region("XX".into()));
        assert_eq!(
            "fax".parse::<HandleKind>().unwrap_err(),
            AddressError::Kind("fax".into())
        );
    }

    #[test]
    fn stored_handles_round_trip() {
        for h in [
            Handle::parse(HandleKind::Email, "A@b.co", es()).unwrap(),
            Handle::parse(HandleKind::Phone, "600123456", es()).unwrap(),
            Handle::parse(HandleKind::Visitor, "0190a0a0-0000-7000-8000-000000000001", es()).unwrap(),
            Handle::parse(HandleKind::External, "crm:4711", es()).unwrap(),
        ] {
            assert_eq!(Handle::from_stored(h.kind(), &h.value()).unwrap(), h);
        }
    }
}
