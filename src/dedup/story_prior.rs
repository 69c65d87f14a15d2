//! Owns the story tier's background document frequencies on disk.
//!
//! The story IDF is counted from the stream, so the first documents of a stream are clustered
//! with an almost flat IDF: everyday words weigh as much as names, and two events of one topic
//! join one story. A [`DfPrior`] counted on earlier articles (other topics, an archive) gives
//! them the contrast from the start; as the stream grows, its own counts dominate.
//! `dropline train story-prior` counts one from a folder of plain-text articles or from
//! dropline's own JSON Lines output, and `dedup.story_prior = PATH` loads it. None is shipped:
//! without the key, stories are clustered from stream counts alone.
//!
//! The file is text: a magic line, `docs N`, then one `TERM DF` line per term in term id order
//! (term ids in hex), so the same articles give the same bytes.

use super::story::{self, DfPrior};
use super::text::words;
use anyhow::{bail, Context, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

/// First line of a prior file; the number is the format (and term hashing) version.
const MAGIC: &str = "dropline-story-prior 1";

/// Arguments of `dropline train story-prior`.
#[derive(Debug, clap::Args)]
pub struct TrainStoryPriorArgs {
    /// Folders of plain-text articles (one document per file, searched recursively) or JSON
    /// Lines files of dropline output (`.jsonl`, `.ndjson`: one document per line's `text`).
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Where the prior file is written.
    #[arg(long)]
    pub out: PathBuf,
    /// Terms held by fewer documents are left out (a smaller file; they count as unseen). The
    /// default keeps every term, as `eval dedup --cv` does.
    #[arg(long, default_value_t = 1)]
    pub min_df: u32,
}

/// Runs `dropline train story-prior`.
pub fn run(args: &TrainStoryPriorArgs) -> Result<()> {
    let mut texts = Vec::new();
    for input in &args.inputs {
        collect(input, &mut texts).with_context(|| format!("cannot read {}", input.display()))?;
    }
    if texts.is_empty() {
        bail!("no documents found in the inputs");
    }
    let prior = count(texts.iter().map(String::as_str), args.min_df);
    let mut out = Vec::new();
    write(&prior, &mut out)?;
    std::fs::write(&args.out, out)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    println!(
        "story prior: {} documents, {} terms (df >= {}) -> {}",
        prior.docs(),
        prior.counts().len(),
        args.min_df,
        args.out.display()
    );
    Ok(())
}

/// Counts the documents holding each story term of `texts`, keeping terms of `min_df` or more.
pub fn count<'a>(texts: impl IntoIterator<Item = &'a str>, min_df: u32) -> DfPrior {
    let terms: Vec<Vec<story::Term>> = texts.into_iter().map(|t| story::terms(&words(t))).collect();
    let all = DfPrior::from_docs(terms.iter().map(Vec::as_slice));
    DfPrior::from_counts(
        all.docs(),
        all.counts().into_iter().filter(|&(_, n)| n >= min_df),
    )
}

/// Writes `prior` in the file format.
pub fn write(prior: &DfPrior, out: &mut impl Write) -> std::io::Result<()> {
    writeln!(out, "{MAGIC}")?;
    writeln!(out, "docs {}", prior.docs())?;
    for (term, n) in prior.counts() {
        writeln!(out, "{term:08x} {n}")?;
    }
    Ok(())
}

/// Reads a prior file written by [`write`].
pub fn load(path: &Path) -> Result<DfPrior> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the story prior {}", path.display()))?;
    parse(&text).with_context(|| format!("invalid story prior {}", path.display()))
}

/// Parses the file format; every malformed line is an error naming its number.
pub fn parse(text: &str) -> Result<DfPrior> {
    let mut lines = text.lines();
    if lines.next() != Some(MAGIC) {
        bail!("not a story prior (the first line is not `{MAGIC}`)");
    }
    let docs = lines
        .next()
        .and_then(|l| l.strip_prefix("docs "))
        .and_then(|n| n.parse::<u64>().ok())
        .context("line 2: expected `docs N`")?;
    let mut df = Vec::new();
    for (i, line) in lines.enumerate() {
        let parsed = line
            .split_once(' ')
            .and_then(|(t, n)| Some((u32::from_str_radix(t, 16).ok()?, n.parse::<u32>().ok()?)));
        match parsed {
            Some((t, n)) if u64::from(n) <= docs => df.push((t, n)),
            _ => bail!("line {}: expected `TERM DF` with DF at most {docs}", i + 3),
        }
    }
    Ok(DfPrior::from_counts(docs, df))
}

/// Adds the documents of `input` to `texts`: a folder's files (sorted, recursively), a JSON
/// Lines file's `text` fields, or one plain-text file.
fn collect(input: &Path, texts: &mut Vec<String>) -> Result<()> {
    if input.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(input)?
            .map(|e| e.map(|e| e.path()))
            .collect::<std::io::Result<_>>()?;
        entries.sort();
        for e in entries {
            collect(&e, texts)?;
        }
        return Ok(());
    }
    let bytes = std::fs::read(input)?;
    let json_lines = matches!(
        input.extension().and_then(|e| e.to_str()),
        Some("jsonl" | "ndjson")
    );
    if !json_lines {
        texts.push(crate::decode::decode(&bytes, false).text);
        return Ok(());
    }
    for (i, line) in String::from_utf8_lossy(&bytes).lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(line)
            .with_context(|| format!("{}: line {}", input.display(), i + 1))?;
        // Error records have no text; they are not documents.
        if let Some(t) = v.get("text").and_then(|t| t.as_str()) {
            texts.push(t.to_owned());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_prior_reads_back_the_same_counts() {
        let texts = [
            "Police arrested Maria Lopez in Madrid after the robbery.",
            "Police said the robbery in Madrid was the third this year.",
            "The storm closed schools across Florida on Monday.",
        ];
        let prior = count(texts, 1);
        let mut out = Vec::new();
        write(&prior, &mut out).unwrap();
        let back = parse(std::str::from_utf8(&out).unwrap()).unwrap();
        assert_eq!(back.docs(), 3);
        assert_eq!(back.counts(), prior.counts());
        // "police", "robbery" and "madrid" are in two documents; min_df 2 keeps only those.
        let shared = count(texts, 2);
        assert_eq!(shared.docs(), 3);
        assert_eq!(shared.counts().len(), 3, "{:?}", shared.counts());
        assert!(shared.counts().iter().all(|&(_, n)| n == 2));
    }

    #[test]
    fn a_malformed_prior_is_refused_with_its_line() {
        assert!(parse("docs 3\n").is_err());
        let e = parse(&format!("{MAGIC}\ndocs 3\n0000abcd 2\nzz 1\n")).unwrap_err();
        assert!(format!("{e:#}").contains("line 4"), "{e:#}");
        let e = parse(&format!("{MAGIC}\ndocs 3\n0000abcd 9\n")).unwrap_err();
        assert!(format!("{e:#}").contains("line 3"), "{e:#}");
    }

    #[test]
    fn json_lines_count_each_text_and_skip_error_records() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.jsonl");
        std::fs::write(
            &p,
            "{\"text\":\"Police arrested Maria Lopez in Madrid.\"}\n\
             {\"type\":\"error\",\"error\":\"unreadable\"}\n\n\
             {\"text\":\"Madrid police closed the case.\"}\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("a.txt"), "Storms in Florida.").unwrap();
        let mut texts = Vec::new();
        collect(dir.path(), &mut texts).unwrap();
        // Sorted: a.txt first, then the two texts of out.jsonl.
        assert_eq!(texts.len(), 3);
        assert_eq!(texts[0], "Storms in Florida.");
        assert!(texts[2].starts_with("Madrid police"));
    }
}
