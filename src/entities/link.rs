//! Owns in-document linking: gives every mention the canonical name of the entity it refers to
//! ("Tokayev" -> "Kassym-Jomart Tokayev", "CSTO" -> "Collective Security Treaty Organisation").
//!
//! Mentions group by a normalised key (case, `-isation`/`-ization`, a leading "the"); a group
//! then points at a longer group it abbreviates: a person's surname or trailing name part, an
//! acronym of a multi-word name, or a contiguous part of a longer organisation name. The
//! canonical form of a group is its first mention, preferring one not in capitals.

const NAME_LABELS: &[&str] = &["PER", "ORG", "LOC", "MISC"];
/// Positions of the labels that link without an acronym in [`NAME_LABELS`].
const PER: usize = 0;
const ORG: usize = 1;
/// Words that name a kind of organisation, not one organisation: never linked alone.
const GENERIC: &[&str] = &[
    "bank",
    "tv",
    "group",
    "party",
    "council",
    "ministry",
    "university",
    "company",
    "club",
    "association",
    "league",
    "union",
    "airlines",
    "news",
    "times",
    "international",
    "corp",
    "inc",
    "committee",
    "court",
    "army",
    "police",
    "government",
    "agency",
    "service",
    "institute",
    "federation",
    "organization",
    "assembly",
    "parliament",
    "office",
    "department",
];
const SKIP_IN_ACRONYM: &[&str] = &["of", "and", "the", "for", "on", "in", "de", "&", "to"];

/// Mentions with the same key and label; `'a` is the mentions' lifetime.
struct Group<'a> {
    /// Position of the label in [`NAME_LABELS`].
    label: usize,
    display: &'a str,
    parent: Option<usize>,
}

fn normalise(text: &str) -> String {
    // One lower-case copy, edited in place: the replacements allocate only when they apply.
    let mut s = text.to_lowercase();
    // Plain byte scans: a mention is a few words, too short to repay a substring searcher's
    // set-up (`contains` and `trim_end_matches` with a `&str` pattern build one per call).
    if s.as_bytes().windows(7).any(|w| w == b"isation") {
        s = s.replace("isation", "ization");
    }
    if s.contains('’') {
        s = s.replace('’', "'");
    }
    if s.starts_with("the ") {
        s.drain(..4);
    }
    while s.ends_with("'s") {
        s.truncate(s.len() - 2);
    }
    s
}

fn is_caps(text: &str) -> bool {
    text.chars().any(char::is_alphabetic) && !text.chars().any(char::is_lowercase)
}

/// Returns the letters of an acronym ("CSTO", "U.N."), or `None` when `text` is not one.
fn acronym(text: &str) -> Option<String> {
    let letters: String = text.chars().filter(|c| *c != '.').collect();
    let n = letters.chars().count();
    ((2..=7).contains(&n) && letters.chars().all(|c| c.is_uppercase()))
        .then(|| letters.to_lowercase())
}

/// Returns the first letters of the tokens that count in an acronym.
fn initials<'t>(tokens: &'t [&str]) -> impl Iterator<Item = char> + 't {
    tokens
        .iter()
        .filter(|t| !SKIP_IN_ACRONYM.contains(t))
        .filter_map(|t| t.chars().next())
}

fn contains_run(long: &[&str], short: &[&str]) -> bool {
    short.len() < long.len() && long.windows(short.len()).any(|w| w == short)
}

/// Returns the canonical form of each `(text, label)` mention, in order.
pub fn canonicalize(mentions: &[(&str, &str)]) -> Vec<String> {
    let mut groups: Vec<Group> = Vec::new();
    // Sized once for every mention (at most that many groups): the map never grows.
    let mut index: foldhash::HashMap<(String, usize), usize> =
        foldhash::HashMap::with_capacity_and_hasher(mentions.len(), Default::default());
    // Per mention its group; `None` for labels outside `NAME_LABELS`, which are never linked
    // and keep their own text.
    let mut of_mention = Vec::with_capacity(mentions.len());
    for &(text, label) in mentions {
        // Labels are compared as positions from here on, not as strings.
        let Some(label) = NAME_LABELS.iter().position(|&l| l == label) else {
            of_mention.push(None);
            continue;
        };
        let key = normalise(text);
        let gi = match index.entry((key, label)) {
            std::collections::hash_map::Entry::Occupied(e) => {
                let gi = *e.get();
                if is_caps(groups[gi].display) && !is_caps(text) {
                    groups[gi].display = text;
                }
                gi
            }
            std::collections::hash_map::Entry::Vacant(e) => {
                groups.push(Group {
                    label,
                    display: text,
                    parent: None,
                });
                *e.insert(groups.len() - 1)
            }
        };
        of_mention.push(Some(gi));
    }
    // Each group's tokens: the words of its key, borrowed from the index.
    let mut tokens: Vec<Vec<&str>> = vec![Vec::new(); groups.len()];
    for ((key, _), &gi) in &index {
        tokens[gi] = key.split_whitespace().collect();
    }
    for gi in 0..groups.len() {
        let g = &groups[gi];
        let g_tokens = &tokens[gi];
        let acro = if g_tokens.len() == 1 {
            acronym(g.display)
        } else {
            None
        };
        let mut best: Option<usize> = None;
        // Without an acronym only a person or an organisation (not a generic word) links, to
        // a longer group of its own label: for the others no group needs looking at.
        let generic = g_tokens.len() == 1 && GENERIC.contains(&g_tokens[0]);
        let may_link = acro.is_some() || g.label == PER || (g.label == ORG && !generic);
        let candidates = if may_link { &groups[..] } else { &[] };
        for (hi, h) in candidates.iter().enumerate() {
            let h_tokens = &tokens[hi];
            if hi == gi || h_tokens.len() <= g_tokens.len() {
                continue;
            }
            let linked = match &acro {
                Some(a) if h_tokens.len() >= 2 && initials(h_tokens).eq(a.chars()) => true,
                _ if g.label != h.label => false,
                _ if g.label == PER => h_tokens.ends_with(g_tokens),
                _ if g.label == ORG => contains_run(h_tokens, g_tokens) && !generic,
                _ => false,
            };
            if linked && best.is_none_or(|b| tokens[b].len() < h_tokens.len()) {
                best = Some(hi);
            }
        }
        groups[gi].parent = best;
    }
    of_mention
        .into_iter()
        .zip(mentions)
        .map(|(gi, &(text, _))| {
            let Some(mut gi) = gi else {
                return text.to_string();
            };
            // Parents always have more tokens, so the chain ends.
            while let Some(p) = groups[gi].parent {
                gi = p;
            }
            groups[gi].display.to_string()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalise_folds_case_spelling_article_and_possessives() {
        for (text, want) in [
            (
                "The Collective Security Treaty Organisation’s",
                "collective security treaty organization",
            ),
            ("NATO's's", "nato"),
            ("the", "the"),
            ("Jones'", "jones'"),
            ("'s", ""),
            ("ÉCOLE isation", "école ization"),
            ("Isatio", "isatio"),
        ] {
            assert_eq!(normalise(text), want, "{text:?}");
        }
    }

    #[test]
    fn links_surnames_acronyms_and_spellings() {
        let m = [
            ("Tokayev", "PER"),
            ("Kassym-Jomart Tokayev", "PER"),
            ("CSTO", "ORG"),
            ("Collective Security Treaty Organisation", "ORG"),
            ("Collective Security Treaty Organization", "ORG"),
            ("KAZAKHSTAN", "LOC"),
            ("Kazakhstan", "LOC"),
            ("UN", "ORG"),
            ("United Nations", "ORG"),
            ("Putin", "PER"),
            ("five", "CARDINAL"),
            ("first", "ORDINAL"),
            ("First", "ORDINAL"),
        ];
        let c = canonicalize(&m);
        assert_eq!(c[0], "Kassym-Jomart Tokayev");
        assert_eq!(c[1], "Kassym-Jomart Tokayev");
        assert_eq!(c[2], "Collective Security Treaty Organisation");
        assert_eq!(c[4], "Collective Security Treaty Organisation");
        assert_eq!(c[5], "Kazakhstan");
        assert_eq!(c[7], "United Nations");
        assert_eq!(c[9], "Putin");
        assert_eq!(c[10], "five");
        assert_eq!(c[12], "First");
    }

    #[test]
    fn places_and_misc_link_only_as_acronyms() {
        let m = [
            ("York", "LOC"),
            ("New York", "LOC"),
            ("Jordan", "LOC"),
            ("Michael Jordan", "PER"),
            ("Cup", "MISC"),
            ("World Cup", "MISC"),
            ("US", "LOC"),
            ("United States", "LOC"),
            ("UN", "ORG"),
            ("United Nations", "LOC"),
        ];
        let c = canonicalize(&m);
        assert_eq!(c[0], "York");
        assert_eq!(c[2], "Jordan");
        assert_eq!(c[4], "Cup");
        assert_eq!(c[6], "United States");
        // An acronym links across labels.
        assert_eq!(c[8], "United Nations");
    }

    #[test]
    fn does_not_link_first_names_or_generic_words() {
        let c = canonicalize(&[("John", "PER"), ("John Smith", "PER")]);
        assert_eq!(c[0], "John");
        let c = canonicalize(&[("Marfin Bank", "ORG"), ("Bank", "ORG"), ("Marfin", "ORG")]);
        assert_eq!(c[1], "Bank");
        assert_eq!(c[2], "Marfin Bank");
    }
}
