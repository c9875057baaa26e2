//! The deterministic data set: people with phone numbers and email addresses, a Zipf-shaped
//! history over them, Spanish and English text, envelopes for the ingest path and Asterisk
//! `Master.csv` lines. Everything derives from the seed: the same seed gives the same data.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use switchboard_connectors::{
    ChannelKind, Content, Direction, EmailAddress, Handle, InboundEnvelope, PhoneNumber, Region, ThreadingHints,
};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// The newest instant of the generated history; everything happened in the two years before.
pub fn history_end() -> OffsetDateTime {
    time::macros::datetime!(2026-01-01 00:00 UTC)
}

/// Days of history before [`history_end`].
pub const HISTORY_DAYS: i64 = 730;

/// A word that occurs in about one message in [`RARE_ONE_IN`].
pub const RARE_WORD: &str = "ornitorrinco";
const RARE_ONE_IN: u32 = 2_000;

/// Spanish words, many accented: searching without the accent must find them.
#[rustfmt::skip]
const ES_WORDS: &[&str] = &[
    "teléfono", "facturación", "dirección", "envío", "contraseña", "número", "información", "atención",
    "devolución", "reclamación", "línea", "móvil", "señal", "conexión", "tarifa", "cancelación",
    "suscripción", "pedido", "factura", "cobro", "pago", "tarjeta", "cuenta", "cliente", "servicio",
    "técnico", "avería", "instalación", "fibra", "velocidad", "mañana", "tarde", "semana", "día", "mes",
    "año", "última", "próxima", "después", "también", "además", "todavía", "rápido", "lento", "problema",
    "solución", "gestión", "cambio", "producto", "garantía", "reparación", "recogida", "entrega", "paquete",
    "transportista", "código", "postal", "calle", "ciudad", "portabilidad", "compañía", "oferta", "descuento",
    "importe", "recibo", "domiciliación", "banco", "transferencia", "reembolso", "plazo", "días", "hábiles",
    "almacén", "stock", "talla", "color", "devolver", "recibir", "enviar", "pagar", "cancelar", "cambiar",
    "llamar", "necesito", "quiero", "puedo", "podéis", "había", "está", "están", "sería", "habéis", "compré",
    "llegó", "funciona", "roto", "dañado", "incorrecto", "duplicado", "urgente", "gracias", "saludos",
    "atentamente", "consulta", "incidencia", "expediente", "número de referencia", "contrato", "permanencia",
    "baja", "alta", "titular", "documentación", "DNI", "correo", "electrónico", "aplicación", "sesión",
    "acceso", "usuario", "página", "web", "carrito", "compra", "envíos", "península", "Canarias", "Baleares",
    "lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo", "ayer", "hoy", "ahora",
];

#[rustfmt::skip]
const EN_WORDS: &[&str] = &[
    "invoice", "billing", "payment", "refund", "order", "delivery", "shipping", "address", "password",
    "account", "login", "phone", "number", "support", "technician", "router", "internet", "connection",
    "slow", "broken", "replace", "warranty", "return", "package", "tracking", "courier", "charge", "card",
    "subscription", "plan", "upgrade", "cancel", "contract", "monthly", "yesterday", "tomorrow", "please",
    "thanks", "urgent", "issue", "problem", "error", "message", "screen", "app", "update", "customer",
    "service", "agent", "manager", "complaint", "receipt", "discount", "coupon", "voucher", "balance",
    "overdue", "statement", "direct", "debit", "bank", "transfer", "credit", "amount", "wrong", "twice",
    "missing", "damaged", "parcel", "warehouse", "stock", "size", "colour", "exchange", "store", "branch",
    "appointment", "schedule", "reschedule", "morning", "afternoon", "evening", "week", "weekend", "today",
    "still", "again", "already", "waiting", "received", "sent", "paid", "cancelled", "changed", "called",
    "email", "website", "checkout", "basket", "voucher", "loyalty", "points", "membership", "renewal",
    "reference", "ticket", "case", "escalate", "supervisor", "callback", "signal", "coverage", "outage",
];

/// Whole sentences, so phrases ("dirección de envío", "order number") really occur.
const ES_SENTENCES: &[&str] = &[
    "No he recibido mi pedido todavía.",
    "La factura de este mes tiene un importe incorrecto.",
    "¿Podéis cambiar la dirección de envío del pedido?",
    "He olvidado mi contraseña y no puedo acceder a mi cuenta.",
    "El teléfono de contacto ha cambiado, por favor actualizadlo.",
    "Me habéis cobrado dos veces el mismo recibo.",
    "Quiero solicitar la devolución del producto.",
    "El paquete llegó dañado y la caja estaba abierta.",
    "¿Cuándo pasará el técnico a revisar la instalación?",
    "La conexión de fibra se corta varias veces al día.",
    "Necesito una copia de la factura para mi empresa.",
    "El transportista dice que no estaba en casa, pero sí estaba.",
    "¿Cuál es el plazo para recibir el reembolso?",
    "Quiero darme de baja del servicio sin permanencia.",
    "La aplicación me da un error al iniciar sesión.",
    "Os escribo por la reclamación que abrí la semana pasada.",
];

const EN_SENTENCES: &[&str] = &[
    "I have not received my order yet.",
    "This month's invoice shows the wrong amount.",
    "Could you change the shipping address on my order?",
    "I forgot my password and cannot log in to my account.",
    "Please update my phone number on file.",
    "I was charged twice for the same order number.",
    "I would like to return the item for a refund.",
    "The parcel arrived damaged and the box was open.",
    "When will the technician come to check the router?",
    "My internet connection drops several times a day.",
    "Can you send me a copy of the invoice for my company?",
    "The courier says nobody was home, but I was there all day.",
    "How long does a refund take to reach my card?",
    "I want to cancel my subscription at the end of the month.",
    "The app shows an error when I try to sign in.",
    "I am writing about the complaint I opened last week.",
];

#[rustfmt::skip]
const ES_GREETINGS: &[&str] = &["Hola,", "Buenos días,", "Buenas tardes,", "Estimados señores:", "Hola, buenas."];
#[rustfmt::skip]
const EN_GREETINGS: &[&str] = &["Hi,", "Hello,", "Good morning,", "Dear support team,", "Hi there,"];
#[rustfmt::skip]
const ES_CLOSINGS: &[&str] = &["Gracias.", "Un saludo.", "Muchas gracias de antemano.", "Atentamente,", "Quedo a la espera."];
#[rustfmt::skip]
const EN_CLOSINGS: &[&str] = &["Thanks.", "Kind regards,", "Many thanks in advance.", "Best,", "Looking forward to your reply."];
#[rustfmt::skip]
const ES_SUBJECTS: &[&str] = &[
    "Consulta sobre mi factura", "Pedido no recibido", "Cambio de dirección de envío", "Problema con la contraseña",
    "Reclamación", "Devolución de producto", "Avería en la línea", "Solicitud de baja", "Cobro duplicado",
];
#[rustfmt::skip]
const EN_SUBJECTS: &[&str] = &[
    "Question about my invoice", "Order not received", "Change of shipping address", "Password reset",
    "Complaint", "Product return", "Line fault", "Cancellation request", "Double charge",
];

#[rustfmt::skip]
const ES_FIRST: &[&str] = &[
    "Ana", "José", "Lucía", "Íñigo", "María José", "Begoña", "Álvaro", "Sofía", "Jesús", "Martín", "Inés",
    "Raúl", "Nuria", "Andrés", "Mónica", "Óscar", "Ángela", "Rocío", "Sebastián", "Guadalupe", "Ximena",
];
#[rustfmt::skip]
const ES_LAST: &[&str] = &[
    "García", "Martínez", "Fernández", "Sánchez", "López", "Núñez", "Pérez", "Gómez", "Jiménez", "Muñoz",
    "Rodríguez", "Hernández", "Díaz", "Álvarez", "Romero", "Ibáñez", "Peña", "Castaño", "Ortiz", "Ruiz",
];
#[rustfmt::skip]
const EN_FIRST: &[&str] = &[
    "John", "Emily", "Oliver", "Charlotte", "James", "Amelia", "Harry", "Sophie", "Michael", "Jessica",
    "David", "Hannah", "Thomas", "Lukas", "Anna", "Jonas", "Lena",
];
#[rustfmt::skip]
const EN_LAST: &[&str] = &[
    "Smith", "Clarke", "Johnson", "Brown", "Taylor", "Wilson", "Evans", "Walker", "Wright", "Müller",
    "Schmidt", "Fischer", "Weber", "O'Brien", "Davies",
];
#[rustfmt::skip]
const DOMAINS: &[&str] = &[
    "gmail.com", "hotmail.es", "yahoo.es", "outlook.com", "telefonica.net", "icloud.com", "gmx.de",
    "btinternet.co.uk", "prodigy.net.mx", "yahoo.com",
];

/// A customer: one person, reachable by phone, email and a chat visitor id.
#[derive(Debug, Clone)]
pub struct Person {
    pub name: String,
    pub spanish: bool,
    /// The number's country.
    pub country: &'static str,
    pub phone: PhoneNumber,
    pub email: EmailAddress,
    pub visitor: Uuid,
}

impl Person {
    /// The ways a caller-lookup client writes this number: for Spanish numbers the spaced
    /// international form, the `00` international prefix and the national number; otherwise E.164.
    pub fn phone_spellings(&self) -> Vec<(&'static str, String)> {
        let e164 = self.phone.as_str().to_owned();
        if self.country != "ES" {
            return vec![("e164", e164)];
        }
        let national = &e164[3..];
        let spaced = format!(
            "+34 {} {} {} {}",
            &national[..3],
            &national[3..5],
            &national[5..7],
            &national[7..]
        );
        vec![
            ("+34 spaced", spaced),
            ("0034", format!("0034{national}")),
            ("national", national.to_owned()),
        ]
    }

    /// The number as a PBX writes it in a CDR: national digits for Spanish numbers, `00` and the
    /// country code for others.
    pub fn pbx_number(&self) -> String {
        let digits = self.phone.digits();
        match self.country {
            "ES" => digits[2..].to_owned(),
            _ => format!("00{digits}"),
        }
    }
}

/// Zipf-distributed choice of a person: rank 0 is the heaviest. Exact, by inverse CDF.
pub struct Zipf {
    cumulative: Vec<f64>,
}

impl Zipf {
    pub fn new(n: usize, exponent: f64) -> Self {
        let mut total = 0.0;
        let cumulative = (1..=n.max(1))
            .map(|k| {
                total += 1.0 / (k as f64).powf(exponent);
                total
            })
            .collect();
        Self { cumulative }
    }

    pub fn sample(&self, rng: &mut impl Rng) -> usize {
        let total = *self.cumulative.last().unwrap_or(&1.0);
        let u = rng.random::<f64>() * total;
        self.cumulative
            .partition_point(|c| *c < u)
            .min(self.cumulative.len() - 1)
    }
}

/// The people of the data set; `seed` and `count` fully determine them.
pub fn people(seed: u64, count: usize) -> Vec<Person> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x7065_6f70_6c65);
    let es = Region::parse("ES").expect("ES is a region");
    (0..count)
        .map(|i| {
            let country = pick_weighted(&mut rng, &[("ES", 60), ("MX", 12), ("US", 12), ("GB", 8), ("DE", 8)]);
            let spanish = matches!(country, "ES" | "MX") || rng.random_bool(0.1);
            let (first, last) = if spanish {
                (ES_FIRST, ES_LAST)
            } else {
                (EN_FIRST, EN_LAST)
            };
            let given = pick(&mut rng, first);
            let family = pick(&mut rng, last);
            let name = if spanish && rng.random_bool(0.6) {
                format!("{given} {family} {}", pick(&mut rng, last))
            } else {
                format!("{given} {family}")
            };
            let phone = phone_number(&mut rng, country, es);
            let local = format!("{}.{}{}", ascii_fold(given), ascii_fold(family), i)
                .replace([' ', '\''], "")
                .to_lowercase();
            let email = EmailAddress::parse(&format!("{local}@{}", pick(&mut rng, DOMAINS)))
                .unwrap_or_else(|_| EmailAddress::parse(&format!("cliente{i}@example.com")).expect("a valid address"));
            Person {
                name,
                spanish,
                country,
                phone,
                email,
                visitor: Uuid::from_u128(rng.random()),
            }
        })
        .collect()
}

/// A valid number of `country` with a realistic length, in E.164.
fn phone_number(rng: &mut StdRng, country: &str, region: Region) -> PhoneNumber {
    for _ in 0..100 {
        let candidate = match country {
            // Mobiles 6xx xxx xxx and 7[1-4]x xxx xxx, landlines 91/93/95/96 + 7 digits.
            "ES" => match rng.random_range(0..10) {
                0..=6 => format!("+346{}", digits(rng, 8)),
                7 => format!("+347{}{}", rng.random_range(1..=4), digits(rng, 7)),
                _ => format!("+349{}{}", pick(rng, &["1", "3", "5", "6"]), digits(rng, 7)),
            },
            // NANP: a real area code, an exchange not starting with 0/1, four digits.
            "US" => format!(
                "+1{}{}{}",
                pick(
                    rng,
                    &["212", "312", "415", "617", "305", "206", "512", "713", "404", "303"]
                ),
                rng.random_range(200..=999),
                digits(rng, 4)
            ),
            // Ten digits after +52: Mexico City, Guadalajara, Monterrey.
            "MX" => format!("+52{}{}", pick(rng, &["55", "33", "81"]), digits(rng, 8)),
            // UK mobiles 07xxx xxxxxx.
            "GB" => format!("+447{}{}", rng.random_range(4..=9), digits(rng, 8)),
            // German mobiles: 015x with 8 digits after, 017x with 7 or 8.
            _ => match rng.random_range(0..2) {
                0 => format!("+4915{}{}", pick(rng, &["1", "2", "7", "9"]), digits(rng, 8)),
                _ => format!("+4917{}{}", rng.random_range(0..=9), digits(rng, 7)),
            },
        };
        if let Ok(number) = PhoneNumber::parse(&candidate, region) {
            return number;
        }
    }
    PhoneNumber::parse("+34600000000", region).expect("a valid Spanish mobile")
}

fn digits(rng: &mut StdRng, n: usize) -> String {
    (0..n).map(|_| char::from(b'0' + rng.random_range(0..10u8))).collect()
}

pub fn pick<'a, T: ?Sized>(rng: &mut impl Rng, items: &'a [&'a T]) -> &'a T {
    items[rng.random_range(0..items.len())]
}

fn pick_weighted<T: Copy>(rng: &mut impl Rng, items: &[(T, u32)]) -> T {
    let total: u32 = items.iter().map(|(_, w)| w).sum();
    let mut roll = rng.random_range(0..total);
    for (item, weight) in items {
        if roll < *weight {
            return *item;
        }
        roll -= weight;
    }
    items[items.len() - 1].0
}

/// Lower-case ASCII for email local parts (`Íñigo` -> `inigo`).
pub fn ascii_fold(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            'á' | 'à' | 'ä' | 'Á' => 'a',
            'é' | 'è' | 'ë' | 'É' => 'e',
            'í' | 'ï' | 'Í' => 'i',
            'ó' | 'ö' | 'Ó' => 'o',
            'ú' | 'ü' | 'Ú' => 'u',
            'ñ' | 'Ñ' => 'n',
            other => other,
        })
        .collect()
}

/// Free text of about `target` bytes in the person's language.
pub fn text(rng: &mut impl Rng, spanish: bool, target: usize) -> String {
    let (words, sentences) = if spanish {
        (ES_WORDS, ES_SENTENCES)
    } else {
        (EN_WORDS, EN_SENTENCES)
    };
    let mut out = String::with_capacity(target + 64);
    while out.len() < target {
        if !out.is_empty() {
            out.push(' ');
        }
        if rng.random_bool(0.5) {
            out.push_str(pick(rng, sentences));
        } else {
            // A looser sentence from the vocabulary.
            let n = rng.random_range(4..12);
            for i in 0..n {
                let word = pick(rng, words);
                if i == 0 {
                    let mut chars = word.chars();
                    if let Some(first) = chars.next() {
                        out.extend(first.to_uppercase());
                        out.push_str(chars.as_str());
                    }
                } else {
                    out.push(' ');
                    out.push_str(word);
                }
            }
            out.push('.');
        }
    }
    if rng.random_ratio(1, RARE_ONE_IN) {
        out.push(' ');
        out.push_str(RARE_WORD);
        out.push('.');
    }
    out
}

/// Which channel a touchpoint is on: email 30%, chat 30%, SMS 25%, voice 15%.
pub fn channel(rng: &mut impl Rng) -> ChannelKind {
    match rng.random_range(0..100) {
        0..30 => ChannelKind::Email,
        30..60 => ChannelKind::Chat,
        60..85 => ChannelKind::Sms,
        _ => ChannelKind::Voice,
    }
}

/// The channel accounts the seeded envelopes go to, one per kind.
#[derive(Debug, Clone, Copy)]
pub struct Accounts {
    pub email: Uuid,
    pub chat: Uuid,
    pub sms: Uuid,
    pub voice: Uuid,
}

impl Accounts {
    fn of(&self, kind: ChannelKind) -> Uuid {
        match kind {
            ChannelKind::Email => self.email,
            ChannelKind::Chat => self.chat,
            ChannelKind::Sms => self.sms,
            _ => self.voice,
        }
    }
}

/// One generated touchpoint, with the person it belongs to.
pub struct Generated {
    pub person: usize,
    pub envelope: InboundEnvelope,
}

/// The interactions of chunk `chunk` (numbers `first..first + len` of the data set). Each
/// chunk has its own generator, so chunks can be made in any order on any task.
pub fn chunk(
    seed: u64,
    chunk: u64,
    first: u64,
    len: usize,
    people: &[Person],
    zipf: &Zipf,
    accounts: &Accounts,
) -> Vec<Generated> {
    let mut rng = StdRng::seed_from_u64(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ chunk);
    (0..len as u64)
        .map(|i| {
            let index = first + i;
            let person = zipf.sample(&mut rng);
            let kind = channel(&mut rng);
            let envelope = envelope(&mut rng, seed, index, &people[person], person, kind, accounts);
            Generated { person, envelope }
        })
        .collect()
}

/// A touchpoint on `kind` for `person`, with external id `bench-{seed}-{index}`.
fn envelope(
    rng: &mut StdRng,
    seed: u64,
    index: u64,
    person: &Person,
    person_no: usize,
    kind: ChannelKind,
    accounts: &Accounts,
) -> InboundEnvelope {
    let direction = if rng.random_bool(0.7) {
        Direction::Inbound
    } else {
        Direction::Outbound
    };
    let occurred_at = history_end() - Duration::seconds(rng.random_range(0..HISTORY_DAYS * 86_400));
    let spanish = person.spanish;
    let mut threading = ThreadingHints::default();
    let (contact, content, details) = match kind {
        ChannelKind::Email => {
            let (greetings, closings, subjects) = if spanish {
                (ES_GREETINGS, ES_CLOSINGS, ES_SUBJECTS)
            } else {
                (EN_GREETINGS, EN_CLOSINGS, EN_SUBJECTS)
            };
            let target: usize = rng.random_range(300..2_000);
            let body = format!(
                "{}\n\n{}\n\n{}\n{}",
                pick(rng, greetings),
                text(rng, spanish, target.saturating_sub(60)),
                pick(rng, closings),
                person.name
            );
            threading.message_id = Some(format!("<{seed}.{index}@bench.example>"));
            threading.thread_key = Some(format!("case-{person_no}-{}", rng.random_range(0..3)));
            // One email in five arrives as HTML only, as many mail clients send it.
            let content = if rng.random_bool(0.2) {
                let html = body
                    .split("\n\n")
                    .map(|p| format!("<p>{}</p>", p.replace('&', "&amp;").replace('<', "&lt;")))
                    .collect::<String>();
                Content {
                    subject: Some(pick(rng, subjects).to_owned()),
                    text: None,
                    html: Some(format!("<html><body>{html}</body></html>")),
                }
            } else {
                Content {
                    subject: Some(pick(rng, subjects).to_owned()),
                    text: Some(body),
                    html: None,
                }
            };
            (
                Handle::Email(person.email.clone()),
                content,
                json!({"from": person.email.as_str(), "to": "soporte@bench.example"}),
            )
        }
        ChannelKind::Chat => {
            let target = rng.random_range(20..240);
            // Half the chats come from identified visitors (their email), half anonymous.
            let handle = if rng.random_bool(0.5) {
                Handle::Email(person.email.clone())
            } else {
                Handle::Visitor(person.visitor)
            };
            (
                handle,
                Content {
                    subject: None,
                    text: Some(text(rng, spanish, target)),
                    html: None,
                },
                json!({"page": pick(rng, &["/checkout", "/account", "/orders", "/help"])}),
            )
        }
        ChannelKind::Sms => {
            let target = rng.random_range(15..150);
            let mut body = text(rng, spanish, target);
            if body.len() > 300 {
                let cut = body.char_indices().nth(160).map_or(body.len(), |(i, _)| i);
                body.truncate(cut);
            }
            (
                Handle::Phone(person.phone.clone()),
                Content {
                    subject: None,
                    text: Some(body),
                    html: None,
                },
                json!({"provider": "twilio", "to": "+34910000000", "num_segments": "1"}),
            )
        }
        _ => {
            let answered = rng.random_bool(0.75);
            let talk = if answered { rng.random_range(20..900) } else { 0 };
            let mut summary = match direction {
                Direction::Outbound => format!("Outbound call to {}", person.phone),
                _ => format!("Inbound call from {}", person.phone),
            };
            summary.push_str(if answered { ", answered" } else { ", missed" });
            if answered {
                summary.push_str(&format!(", talk time {}:{:02}", talk / 60, talk % 60));
                if rng.random_bool(0.4) {
                    summary.push_str(". ");
                    let length = rng.random_range(30..200);
                    summary.push_str(&text(rng, spanish, length));
                }
            }
            (
                Handle::Phone(person.phone.clone()),
                Content {
                    subject: None,
                    text: Some(summary),
                    html: None,
                },
                json!({"source": "bench", "disposition": if answered { "answered" } else { "missed" }, "talk_s": talk}),
            )
        }
    };
    InboundEnvelope {
        channel_account_id: accounts.of(kind),
        channel: kind,
        external_id: format!("bench-{seed}-{index}"),
        direction,
        contact,
        contact_name: (direction == Direction::Inbound).then(|| person.name.clone()),
        occurred_at,
        threading,
        content,
        attachments: vec![],
        details,
        cursor: None,
        agent_extension: None,
        needs_reply: true,
    }
}

/// `count` lines of Asterisk `Master.csv` (cdr_csv, 18 columns with uniqueid and userfield):
/// calls from customers to extensions, calls out to customers, and some calls between
/// extensions (which the importer skips).
pub fn master_csv(seed: u64, count: usize, people: &[Person], zipf: &Zipf) -> String {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x0063_6472_5f63_7376);
    let mut out = String::with_capacity(count * 300);
    let start_of = |i: usize| history_end() - Duration::days(HISTORY_DAYS) + Duration::seconds(i as i64 * 37);
    let fmt = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    for i in 0..count {
        let start = start_of(i) + Duration::seconds(rng.random_range(0..30));
        let extension = format!("{}", rng.random_range(1001..=1040));
        let person = &people[zipf.sample(&mut rng)];
        let roll = rng.random_range(0..100);
        let (src, dst, clid, context) = match roll {
            0..55 => (
                person.pbx_number(),
                extension.clone(),
                format!("\"{}\" <{}>", person.name, person.pbx_number()),
                "from-pstn",
            ),
            55..92 => (
                extension.clone(),
                person.pbx_number(),
                format!("\"Agente {extension}\" <{extension}>"),
                "from-internal",
            ),
            _ => {
                let other = format!("{}", rng.random_range(1001..=1040));
                (
                    extension.clone(),
                    other,
                    format!("\"Agente {extension}\" <{extension}>"),
                    "from-internal",
                )
            }
        };
        let (disposition, app) = match rng.random_range(0..100) {
            0..70 => ("ANSWERED", "Dial"),
            70..88 => ("NO ANSWER", "Dial"),
            88..95 => ("BUSY", "Dial"),
            95..98 => ("FAILED", "Dial"),
            _ => ("ANSWERED", "VoiceMail"),
        };
        let ring = rng.random_range(2..25);
        let talk = if disposition == "ANSWERED" {
            rng.random_range(10..1_200)
        } else {
            0
        };
        let answer = if disposition == "ANSWERED" {
            format!(
                "\"{}\"",
                (start + Duration::seconds(ring)).format(fmt).unwrap_or_default()
            )
        } else {
            String::new()
        };
        let end = start + Duration::seconds(ring + talk);
        let uniqueid = format!("{}.{}", start.unix_timestamp(), i);
        let channel = format!("PJSIP/trunk-{:08x}", rng.random::<u32>());
        let dst_channel = format!("PJSIP/{dst}-{:08x}", rng.random::<u32>());
        out.push_str(&format!(
            "\"\",\"{src}\",\"{dst}\",\"{context}\",\"{}\",\"{channel}\",\"{dst_channel}\",\"{app}\",\"PJSIP/{dst},30,tT\",\"{}\",{answer},\"{}\",{},{talk},\"{disposition}\",\"DOCUMENTATION\",\"{uniqueid}\",\"\"\n",
            clid.replace('"', "\"\""),
            start.format(fmt).unwrap_or_default(),
            end.format(fmt).unwrap_or_default(),
            ring + talk,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_people_and_text() {
        let a = people(7, 50);
        let b = people(7, 50);
        assert_eq!(
            a.iter().map(|p| p.phone.as_str()).collect::<Vec<_>>(),
            b.iter().map(|p| p.phone.as_str()).collect::<Vec<_>>()
        );
        let mut r1 = StdRng::seed_from_u64(1);
        let mut r2 = StdRng::seed_from_u64(1);
        assert_eq!(text(&mut r1, true, 500), text(&mut r2, true, 500));
    }

    #[test]
    fn every_country_gets_valid_numbers_of_its_own_without_the_fallback() {
        let people = people(42, 3_000);
        for country in ["ES", "MX", "US", "GB", "DE"] {
            let of_country: Vec<&Person> = people.iter().filter(|p| p.country == country).collect();
            assert!(of_country.len() > 100, "{country}: {}", of_country.len());
            let prefix = match country {
                "ES" => "+34",
                "MX" => "+52",
                "US" => "+1",
                "GB" => "+44",
                _ => "+49",
            };
            assert!(
                of_country.iter().all(|p| p.phone.as_str().starts_with(prefix)),
                "{country}"
            );
        }
        let mut numbers: Vec<&str> = people.iter().map(|p| p.phone.as_str()).collect();
        numbers.sort_unstable();
        numbers.dedup();
        assert!(numbers.len() > 2_990, "numbers repeat: {}", numbers.len());
    }

    #[test]
    fn zipf_puts_most_weight_on_the_first_ranks() {
        let zipf = Zipf::new(1_000, 1.0);
        let mut rng = StdRng::seed_from_u64(3);
        let top = (0..10_000).filter(|_| zipf.sample(&mut rng) < 10).count();
        assert!(top > 3_000, "{top}");
    }

    #[test]
    fn spanish_spellings_all_parse_to_the_same_number() {
        let es = Region::parse("ES").unwrap();
        for person in people(1, 40).iter().filter(|p| p.country == "ES") {
            for (_, spelling) in person.phone_spellings() {
                assert_eq!(PhoneNumber::parse(&spelling, es).unwrap(), person.phone, "{spelling}");
            }
            assert_eq!(PhoneNumber::parse(&person.pbx_number(), es).unwrap(), person.phone);
        }
    }
}
