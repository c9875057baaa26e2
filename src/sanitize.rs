//! Untrusted HTML made safe to show, and plain text derived from it for search.
//!
//! ammonia's allow-list already drops scripts, styles, event handlers, forms, svg and math.
//! On top of it we refuse remote content: an `<img>` keeps its `src` only when it points at an
//! attachment of the same message (`cid:`), so opening a mail never tells the sender it was read.

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::LazyLock;

static CLEANER: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
    let mut builder = ammonia::Builder::default();
    let mut schemes: HashSet<&str> = ["http", "https", "mailto", "tel"].into_iter().collect();
    schemes.insert("cid");
    builder
        .url_schemes(schemes)
        .link_rel(Some("noopener noreferrer nofollow"))
        .attribute_filter(|element, attribute, value| match (element, attribute) {
            ("img", "src") if !value.trim_start().to_ascii_lowercase().starts_with("cid:") => None,
            _ => Some(Cow::Borrowed(value)),
        });
    builder
});

/// Sanitised HTML, safe for a sandboxed frame.
pub fn clean_html(html: &str) -> String {
    CLEANER.clean(html).to_string()
}

/// Readable plain text of an HTML body, for search and previews.
pub fn html_to_text(html: &str) -> String {
    html2text::from_read(html.as_bytes(), 10_000)
        .map(|t| t.trim().to_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_handlers_styles_svg_and_forms_are_removed() {
        let dirty = r#"<p onclick="steal()">Hola <b>Ana</b></p><script>alert(1)</script><style>p{}</style>
            <svg><circle/></svg><form action="https://evil"><input name=x></form><a href="javascript:alert(1)">x</a>"#;
        let clean = clean_html(dirty);
        for banned in [
            "onclick",
            "<script",
            "alert",
            "<style",
            "<svg",
            "<form",
            "<input",
            "javascript:",
        ] {
            assert!(!clean.contains(banned), "{banned} survived in {clean}");
        }
        assert!(clean.contains("<b>Ana</b>"), "{clean}");
    }

    #[test]
    fn remote_images_lose_their_source_but_inline_attachments_keep_it() {
        let clean = clean_html(r#"<img src="https://tracker.example/p.gif"><img src="cid:logo@x">"#);
        assert!(!clean.contains("tracker.example"), "{clean}");
        assert!(clean.contains(r#"src="cid:logo@x""#), "{clean}");
    }

    #[test]
    fn links_cannot_reach_back_to_the_opener() {
        assert!(clean_html(r#"<a href="https://x.es">x</a>"#).contains("noopener"));
    }

    #[test]
    fn text_is_derived_from_html() {
        assert_eq!(
            html_to_text("<p>Mi <b>teléfono</b> no funciona</p>"),
            "Mi teléfono no funciona"
        );
    }
}
