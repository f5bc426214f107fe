//! Matcher speed: classify over a few thousand title+summary items, and profile building.
//!
//! Run with `cargo bench --bench matcher`. Items are the shared dev set
//! (`../shared/eval/dev.jsonl`) repeated to 4,650 items, or, when it is absent, synthetic items
//! made from the seeds' sentences.

use std::hint::black_box;
use std::path::Path;

use divan::counter::ItemsCount;
use storywatch::story::{BaselineArticle, MatchInput, Profile, Tuning, load_seeds};

fn main() {
    divan::main();
}

fn seeds() -> Vec<BaselineArticle> {
    load_seeds(&Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds")).unwrap_or_default()
}

/// (title, summary, published) items to classify.
fn items() -> Vec<(String, String, Option<jiff::Timestamp>)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/eval/dev.jsonl");
    let mut base = Vec::new();
    if let Ok(text) = std::fs::read_to_string(path)
        && let Ok(items) = storywatch::story::read_labels(&text)
    {
        for i in items {
            base.push((i.title, i.summary, i.published));
        }
    }
    if base.is_empty() {
        for s in seeds() {
            let sentences: Vec<&str> = s.text.split(". ").collect();
            for pair in sentences.chunks(2) {
                base.push((
                    pair[0].to_string(),
                    pair.get(1).unwrap_or(&"").to_string(),
                    None,
                ));
            }
        }
    }
    let mut out = Vec::with_capacity(5000);
    while out.len() < 4600 {
        out.extend(base.iter().cloned());
    }
    out
}

#[divan::bench(sample_count = 30)]
fn classify(bencher: divan::Bencher) {
    let profile = Profile::build(seeds(), &Tuning::default()).unwrap();
    let items = items();
    bencher
        .counter(ItemsCount::new(items.len()))
        .bench_local(|| {
            for (title, summary, published) in &items {
                black_box(profile.classify(&MatchInput {
                    title,
                    summary,
                    content: "",
                    published: *published,
                }));
            }
        });
}

#[divan::bench(sample_count = 30)]
fn build_profile(bencher: divan::Bencher) {
    let seeds = seeds();
    // The shipped background is parsed once per process; parse it outside the timing.
    let _ = storywatch::story::Background::shipped();
    bencher.bench_local(|| black_box(Profile::build(seeds.clone(), &Tuning::default())));
}

#[divan::bench(sample_count = 10)]
fn parse_background() -> storywatch::story::Background {
    storywatch::story::Background::from_table(include_str!("../src/story/background.tsv"))
        .unwrap_or_default()
}
