//! Owns the line-shape rules: lines whose form alone marks them as boilerplate, and the kind of a removed line.
//!
//! These are general patterns from published line filters (C4, RefinedWeb): teaser prefixes and
//! "read more" suffixes, social counters, photo credits, wire attributions and lone date lines.
//! They look only at the line's shape, never at a particular site.

use super::lines::Line;

/// Why a line was removed; serialised as the `kind` of a [`crate::model::RemovedLine`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Teaser,
    RelatedHeadline,
    DateLine,
    SocialCounter,
    Credit,
    Attribution,
    Navigation,
    Recurring,
    /// A layout copy: a run of lines that repeats an earlier run ([`super::repeats`]).
    Repeated,
    Boilerplate,
}

impl Kind {
    /// Returns the kind as written into records.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Teaser => "teaser",
            Kind::RelatedHeadline => "related_headline",
            Kind::DateLine => "date_line",
            Kind::SocialCounter => "social_counter",
            Kind::Credit => "credit",
            Kind::Attribution => "attribution",
            Kind::Navigation => "navigation",
            Kind::Recurring => "recurring",
            Kind::Repeated => "repeated",
            Kind::Boilerplate => "boilerplate",
        }
    }
}

const TEASER_PREFIXES: &[&str] = &[
    "read more",
    "read also",
    "also read",
    "read next",
    "see also",
    "related:",
    "related story",
    "related article",
    "recommended:",
    "more:",
    "watch:",
    "listen:",
    "click here",
];
const TEASER_SUFFIXES: &[&str] = &[
    "read more",
    "continue reading",
    "read full story",
    "learn more",
];
const CREDIT_PREFIXES: &[&str] = &[
    "photo:",
    "photo by",
    "photos:",
    "photograph:",
    "photo credit",
    "image:",
    "image credit",
    "image by",
    "images:",
    "credit:",
    "picture:",
    "illustration:",
    "(photo",
    "source image",
];
const CREDIT_MARKS: &[&str] = &[
    "getty images",
    "shutterstock",
    "/ afp",
    "/ reuters",
    "/ ap photo",
];
const ATTRIBUTION_PREFIXES: &[&str] = &[
    "based on materials",
    "based on material",
    "according to materials",
    "source:",
    "sources:",
    "with reporting by",
    "reporting by",
    "additional reporting",
    "editing by",
    "compiled by",
    "written by",
];
const COUNTER_WORDS: &[&str] = &[
    "view", "comment", "share", "like", "read", "repl", "retweet", "follower", "vote",
];

/// Returns the kind of a line that its shape alone marks as boilerplate.
pub fn shape_kind(text: &str, line: &Line) -> Option<Kind> {
    if line.words == 0 {
        // Pure punctuation or symbols: decoration, never article text.
        return Some(Kind::Boilerplate);
    }
    if line.words > 40 {
        return None;
    }
    if starts_with_any(text, TEASER_PREFIXES) {
        return Some(Kind::Teaser);
    }
    if line.words <= 30 && ends_with_teaser(text) {
        return Some(Kind::Teaser);
    }
    if line.words <= 25 && starts_with_any(text, CREDIT_PREFIXES) {
        return Some(Kind::Credit);
    }
    // Agency marks come with a chrome word ("Getty", "Shutterstock") or a slash ("/ AFP").
    if line.words <= 15
        && !line.terminal
        && (line.chrome > 0 || memchr::memchr(b'/', text.as_bytes()).is_some())
        && contains_any(text, CREDIT_MARKS)
    {
        return Some(Kind::Credit);
    }
    if line.words <= 25 && !line.terminal && starts_with_any(text, ATTRIBUTION_PREFIXES) {
        return Some(Kind::Attribution);
    }
    // A byline: "By Jane Doe" is mostly capitalised names, "By the numbers" is a subheading.
    if line.words <= 10
        && !line.terminal
        && starts_with_any(text, &["by "])
        && line.caps * 2 > line.words + 1
    {
        return Some(Kind::Attribution);
    }
    if line.words <= 8 && line.digits > 0 && !line.terminal {
        if is_date_line(text) {
            return Some(Kind::DateLine);
        }
        if is_social_counter(text, line) {
            return Some(Kind::SocialCounter);
        }
    }
    None
}

fn starts_with_any(text: &str, prefixes: &[&str]) -> bool {
    let b = text.as_bytes();
    let Some(first) = b.first().map(u8::to_ascii_lowercase) else {
        return false;
    };
    prefixes.iter().any(|p| {
        let p = p.as_bytes();
        p[0] == first && b.len() >= p.len() && b[..p.len()].eq_ignore_ascii_case(p)
    })
}

fn contains_any(text: &str, needles: &[&str]) -> bool {
    let b = text.as_bytes();
    needles.iter().any(|n| {
        let n = n.as_bytes();
        (0..b.len().saturating_sub(n.len() - 1))
            .any(|i| b[i].to_ascii_lowercase() == n[0] && b[i..i + n.len()].eq_ignore_ascii_case(n))
    })
}

fn ends_with_teaser(text: &str) -> bool {
    let t = text.trim_end_matches(|c: char| !c.is_alphanumeric());
    let b = t.as_bytes();
    TEASER_SUFFIXES
        .iter()
        .any(|s| b.len() >= s.len() && b[b.len() - s.len()..].eq_ignore_ascii_case(s.as_bytes()))
}

/// Returns whether every word of a short line is a number or a date/time word ("14 Jan 2026", "5:50 am").
pub fn is_date_line(text: &str) -> bool {
    let mut numbers = 0;
    let mut others = 0;
    for tok in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
    {
        if tok.bytes().all(|b| b.is_ascii_digit()) {
            numbers += 1;
        } else if is_date_word(tok) {
            others += 1;
        } else {
            return false;
        }
    }
    if others > 0 {
        return numbers > 0 && numbers + others <= 8;
    }
    // Numbers alone are a date only in a numeric date or time form: "09.01.2026", "2026-01-09", "5:50".
    (2..=3).contains(&numbers)
        && text
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | '/' | '-' | ':' | ' '))
}

fn is_date_word(tok: &str) -> bool {
    if tok.len() > 12 {
        return false;
    }
    let mut buf = [0u8; 12];
    for (d, s) in buf.iter_mut().zip(tok.bytes()) {
        *d = s.to_ascii_lowercase();
    }
    let w = &buf[..tok.len()];
    // Ordinal suffixes glued to a number ("4th") also pass.
    let w = match w {
        [d @ .., a, b] if !d.is_empty() && d.iter().all(u8::is_ascii_digit) => {
            if matches!(
                (a, b),
                (b's', b't') | (b'n', b'd') | (b'r', b'd') | (b't', b'h')
            ) {
                return true;
            }
            w
        }
        _ => w,
    };
    matches!(
        w,
        b"jan"
            | b"january"
            | b"feb"
            | b"february"
            | b"mar"
            | b"march"
            | b"apr"
            | b"april"
            | b"may"
            | b"jun"
            | b"june"
            | b"jul"
            | b"july"
            | b"aug"
            | b"august"
            | b"sep"
            | b"sept"
            | b"september"
            | b"oct"
            | b"october"
            | b"nov"
            | b"november"
            | b"dec"
            | b"december"
            | b"mon"
            | b"monday"
            | b"tue"
            | b"tuesday"
            | b"wed"
            | b"wednesday"
            | b"thu"
            | b"thursday"
            | b"fri"
            | b"friday"
            | b"sat"
            | b"saturday"
            | b"sun"
            | b"sunday"
            | b"am"
            | b"pm"
            | b"utc"
            | b"gmt"
            | b"est"
            | b"edt"
            | b"pst"
            | b"cet"
            | b"updated"
            | b"published"
            | b"posted"
            | b"on"
            | b"at"
            | b"min"
            | b"mins"
            | b"read"
            | b"ago"
            | b"hour"
            | b"hours"
            | b"day"
            | b"days"
            | b"last"
            | b"date"
    )
}

fn is_social_counter(text: &str, line: &Line) -> bool {
    if line.words > 6 {
        return false;
    }
    let lower_has = |w: &str| {
        text.as_bytes()
            .windows(w.len())
            .any(|x| x.eq_ignore_ascii_case(w.as_bytes()))
    };
    COUNTER_WORDS.iter().any(|w| lower_has(w))
}

/// Marks runs of other headlines: a non-sentence line between date lines, as in "Latest news" blocks.
pub fn mark_related_headlines(lines: &[Line], kinds: &mut [Option<Kind>]) {
    let is_date = |k: Option<Kind>| k == Some(Kind::DateLine);
    for i in 0..lines.len() {
        if kinds[i].is_some() || lines[i].words < 2 || lines[i].words > 30 {
            continue;
        }
        let next_date = i + 1 < lines.len() && is_date(kinds[i + 1]);
        let prev_date = i > 0 && is_date(kinds[i - 1]);
        let next2_date = i + 3 < lines.len() && is_date(kinds[i + 3]);
        if next_date && (prev_date || next2_date) {
            kinds[i] = Some(Kind::RelatedHeadline);
        }
    }
}

/// Headings that open a block of links to other pages ("Related posts", "You might also like").
const RELATED_HEADINGS: &[&str] = &[
    "related",
    "related post",
    "related posts",
    "related article",
    "related articles",
    "related stories",
    "related news",
    "related content",
    "related reading",
    "related links",
    "related videos",
    "you may also like",
    "you might also like",
    "you may like",
    "you might like",
    "you may also enjoy",
    "you might also enjoy",
    "you may also be interested in",
    "you might also be interested in",
    "also in the news",
    "more stories",
    "more articles",
    "more posts",
    "more videos",
    "more news",
    "recommended for you",
    "recommended reading",
    "recommended articles",
    "recommended posts",
    "recommended stories",
    "read next",
    "up next",
];

/// Marks blocks of links to other pages inside an extracted article: a line that is one of
/// [`RELATED_HEADINGS`] (an optional colon after it) and the lines after it that do not read as
/// a sentence of a body (the linked titles), up to the first that does. Such blocks sit at the
/// article's end or inline between its paragraphs ("Related" and a card). Only for an
/// extractor's output: in a page's visible text the rule is left to the line model. Lines a
/// rule already marked keep their kind.
pub fn mark_related_block(text: &str, lines: &[Line], kinds: &mut [Option<Kind>]) {
    let mut i = 0;
    while i < lines.len() {
        let l = &lines[i];
        let t = l.text(text).trim();
        let t = t.strip_suffix(':').unwrap_or(t).trim_end();
        let heading = l.words <= 7
            && RELATED_HEADINGS
                .iter()
                .any(|h| h.len() == t.len() && h.eq_ignore_ascii_case(t));
        if !heading {
            i += 1;
            continue;
        }
        kinds[i].get_or_insert(Kind::RelatedHeadline);
        i += 1;
        while i < lines.len() && !(lines[i].terminal && lines[i].words >= 5) {
            kinds[i].get_or_insert(Kind::RelatedHeadline);
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strip::lines::measure;

    fn kind(s: &str) -> Option<Kind> {
        shape_kind(s, &measure(s))
    }

    fn related(text: &str) -> Vec<Option<Kind>> {
        let mut lines = Vec::new();
        crate::strip::lines::analyse(text, &mut lines);
        let mut kinds = vec![None; lines.len()];
        mark_related_block(text, &lines, &mut kinds);
        kinds
    }

    #[test]
    fn a_related_posts_heading_and_the_titles_after_it_are_a_block() {
        let r = Some(Kind::RelatedHeadline);
        assert_eq!(
            related("The council met.\nIt agreed.\nRelated Posts:\nBudget passes\nMayor resigns"),
            [None, None, r, r, r]
        );
        // An inline card ends at the next sentence of the body.
        assert_eq!(
            related(
                "Body.\nYOU MIGHT ALSO LIKE\nOther story\nThe council then voted on the budget.\nEnd"
            ),
            [None, r, r, None, None]
        );
        // A heading that only starts with the words, or a sentence about them, is body.
        assert_eq!(
            related("Body.\nRelated species of the fern\nMore stories were told that night.\nEnd."),
            [None; 4]
        );
    }

    #[test]
    fn recognises_the_seed_boilerplate_shapes() {
        assert_eq!(
            kind("READ MORE: Russia warns against outside interference"),
            Some(Kind::Teaser)
        );
        assert_eq!(kind("09.Jan.2026"), Some(Kind::DateLine));
        assert_eq!(kind("14 Jan 2026"), Some(Kind::DateLine));
        assert_eq!(kind("47 views0 comments"), Some(Kind::SocialCounter));
        assert_eq!(
            kind("Photo: official website of the President of the Russian Federation"),
            Some(Kind::Credit)
        );
        assert_eq!(
            kind("Based on materials from TASS"),
            Some(Kind::Attribution)
        );
    }

    #[test]
    fn leaves_subheadings_and_sentences_alone() {
        assert_eq!(kind("Nationwide emergency"), None);
        assert_eq!(kind("Appeal to the CSTO"), None);
        assert_eq!(kind("He did not say what response he had received."), None);
        assert_eq!(kind("In 2021, 40 people were hurt."), None);
        assert_eq!(kind("Top 10 tips for May"), None);
        assert_eq!(kind("$1,595 - $3,000+"), None);
        assert_eq!(kind("12 + 500 = 512"), None);
        assert_eq!(kind("2026-01-09"), Some(Kind::DateLine));
    }

    #[test]
    fn marks_headlines_between_dates() {
        let texts = [
            "Latest newsA headline here",
            "09.Jan.2026",
            "Another headline",
            "08.Jan.2026",
        ];
        let lines: Vec<Line> = texts.iter().map(|t| measure(t)).collect();
        let mut kinds: Vec<Option<Kind>> = texts
            .iter()
            .zip(&lines)
            .map(|(t, l)| shape_kind(t, l))
            .collect();
        mark_related_headlines(&lines, &mut kinds);
        assert_eq!(kinds[0], Some(Kind::RelatedHeadline));
        assert_eq!(kinds[2], Some(Kind::RelatedHeadline));
    }
}
