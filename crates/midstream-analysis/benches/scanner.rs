//! Scanner throughput with 1,000 rules over a 1 MB stream fed in token-sized chunks.
//!
//! Full run:   cargo bench -p midstream-analysis --bench scanner
//! CI smoke:   cargo bench -p midstream-analysis --bench scanner -- --quick
//! (or `-- --test` to run every benchmark once without measuring).
//!
//! The rule set is a realistic mix: 880 keyword rules and 15 literals (product names, phrases),
//! 100 regex rules with named groups (order numbers, tracking codes, dates, amounts, cities),
//! and 5 redact rules (API keys, card numbers, passwords). The text is generated
//! deterministically from an English word list with a few matches sprinkled in.

use std::fmt::Write as _;
use std::hint::black_box;
use std::sync::Arc;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use midstream_analysis::{Detector, ScanOutput, Scanner, Scope};

const STREAM_BYTES: usize = 1 << 20;

/// xorshift64*: deterministic, dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const WORDS: &[&str] = &[
    "the",
    "of",
    "and",
    "to",
    "a",
    "in",
    "is",
    "it",
    "you",
    "that",
    "he",
    "was",
    "for",
    "on",
    "are",
    "with",
    "as",
    "his",
    "they",
    "be",
    "at",
    "one",
    "have",
    "this",
    "from",
    "or",
    "had",
    "by",
    "word",
    "but",
    "what",
    "some",
    "we",
    "can",
    "out",
    "other",
    "were",
    "all",
    "there",
    "when",
    "up",
    "use",
    "your",
    "how",
    "said",
    "an",
    "each",
    "she",
    "which",
    "do",
    "their",
    "time",
    "if",
    "will",
    "way",
    "about",
    "many",
    "then",
    "them",
    "write",
    "would",
    "like",
    "so",
    "these",
    "her",
    "long",
    "make",
    "thing",
    "see",
    "him",
    "two",
    "has",
    "look",
    "more",
    "day",
    "could",
    "go",
    "come",
    "did",
    "number",
    "sound",
    "no",
    "most",
    "people",
    "my",
    "over",
    "know",
    "water",
    "than",
    "call",
    "first",
    "who",
    "may",
    "down",
    "side",
    "been",
    "now",
    "find",
    "model",
    "answer",
    "result",
    "system",
    "question",
    "example",
    "important",
    "however",
    "because",
    "customer",
    "service",
    "account",
    "update",
    "delivery",
    "weather",
    "meeting",
    "report",
    "analysis",
];

const NAMES: &[&str] = &[
    "Paris", "London", "Tokyo", "New York", "Berlin", "Madrid", "Oslo", "Lima",
];

fn keyword_rules(rng: &mut Rng, toml: &mut String) {
    let stems = [
        "refund",
        "invoice",
        "shipment",
        "warranty",
        "discount",
        "subscription",
        "password reset",
        "upgrade",
        "cancellation",
        "complaint",
        "feedback",
        "renewal",
        "backorder",
        "voucher",
        "appointment",
    ];
    for index in 0..880 {
        let stem = stems[index % stems.len()];
        let count = 1 + rng.below(3);
        let keywords: Vec<String> = (0..count)
            .map(|k| {
                format!(
                    "\"{stem} {}{}\"",
                    ["plan", "item", "code", "case"][k],
                    index
                )
            })
            .collect();
        let case = if index % 3 == 0 {
            "case_insensitive = true\n"
        } else {
            ""
        };
        let _ = write!(
            toml,
            "[[intent]]\nname = \"kw{index}\"\nkeywords = [{}]\n{case}action = \"emit\"\n\n",
            keywords.join(", ")
        );
    }
    for index in 0..15 {
        let _ = write!(
            toml,
            "[[intent]]\nname = \"lit{index}\"\nliteral = \"Product-{index:03}X\"\naction = {{ tool = \"catalog\", args = {{ sku = \"$0\" }} }}\n\n"
        );
    }
}

fn regex_rules(toml: &mut String) {
    let templates = [
        r"(?i:order) #?(?P<id>[0-9]{{6,10}}){n}",
        r"(?i:track(?:ing)?) (?:number|code) (?P<code>[A-Z0-9]{{8,12}})-{n}",
        r"(?i:weather) (?:in|for|at) (?P<city>\p{{Lu}}\p{{Ll}}+(?: \p{{Lu}}\p{{Ll}}+)*) v{n}",
        r"(?P<amount>[0-9]+(?:\.[0-9]{{2}})?) ?(?:EUR|USD|GBP)-{n}",
        r"(?i:ticket) (?P<ticket>[A-Z]{{2,4}}-[0-9]{{1,6}})/{n}",
        r"(?P<date>[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}})T{n}",
        r"(?i:remind me to) (?P<task>[a-z ]{{3,40}}) at (?P<time>[0-9]{{1,2}}(?::[0-9]{{2}})?)#{n}",
        r"(?i:call) (?P<who>\p{{Lu}}\p{{Ll}}+) (?:on|at) (?P<number>\+?[0-9 ]{{7,15}})!{n}",
        r"(?i:flight) (?P<flight>[A-Z]{{2}}[0-9]{{2,4}}) (?:to|from) (?P<city>\p{{Lu}}\p{{Ll}}+)~{n}",
        r"(?i:convert) (?P<value>[0-9]+) (?P<from>[a-z]{{1,5}}) (?:to|in) (?P<to>[a-z]{{1,5}})@{n}",
    ];
    for n in 0..100 {
        let template = templates[n % templates.len()];
        let regex = template
            .replace("{{", "{")
            .replace("}}", "}")
            .replace("{n}", &n.to_string());
        let _ = write!(
            toml,
            "[[intent]]\nname = \"re{n}\"\nregex = '{regex}'\nmax_len = 128\naction = \"emit\"\n\n"
        );
    }
}

fn redact_rules(toml: &mut String) {
    toml.push_str(
        r#"
[[intent]]
name = "openai-key"
regex = 'sk-(?:proj-)?[A-Za-z0-9_-]{20,}'
max_len = 200
action = "redact"

[[intent]]
name = "aws-key"
regex = 'AKIA[0-9A-Z]{16}'
action = "redact"

[[intent]]
name = "card"
regex = '(?-u:\b)[0-9]{4}(?:[ -]?[0-9]{4}){3}(?-u:\b)'
max_len = 32
action = { redact = "[card]" }

[[intent]]
name = "password"
regex = '(?i:password): [^ \n]{4,64}'
max_len = 80
action = "redact"

[[intent]]
name = "internal"
keywords = ["project nightingale", "codename bluebird"]
case_insensitive = true
action = "redact"
"#,
    );
}

fn rules() -> String {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut toml = String::new();
    keyword_rules(&mut rng, &mut toml);
    regex_rules(&mut toml);
    redact_rules(&mut toml);
    toml
}

/// ~1 MB of sentences, with a match roughly every 8 KB.
fn stream() -> Vec<u8> {
    let mut rng = Rng(0xD1B5_4A32_D192_ED03);
    let specials = [
        "the weather in Paris looks fine",
        "your order #12345678 shipped",
        "use sk-abcdefghijklmnopqrstuvwx12 carefully",
        "a refund plan12 was issued",
        "Product-007X is back",
        "password: hunter22 was leaked",
    ];
    let mut text = String::with_capacity(STREAM_BYTES + 256);
    while text.len() < STREAM_BYTES {
        let words = 6 + rng.below(14);
        for index in 0..words {
            let word = if rng.below(40) == 0 {
                rng.pick(NAMES)
            } else {
                rng.pick(WORDS)
            };
            if index == 0 {
                let mut chars = word.chars();
                if let Some(first) = chars.next() {
                    text.extend(first.to_uppercase());
                    text.push_str(chars.as_str());
                }
            } else {
                text.push(' ');
                text.push_str(word);
            }
        }
        if rng.below(60) == 0 {
            text.push(' ');
            text.push_str(rng.pick(&specials));
        }
        text.push_str(if rng.below(8) == 0 { ".\n" } else { ". " });
    }
    text.truncate(STREAM_BYTES);
    text.into_bytes()
}

fn scan(detector: &Arc<Detector>, text: &[u8], chunk: usize, out: &mut ScanOutput) -> usize {
    let mut scanner = Scanner::new(Arc::clone(detector), Scope::Output);
    let mut detections = 0;
    for piece in text.chunks(chunk) {
        out.clear();
        scanner.feed(black_box(piece), out);
        detections += out.detections.len();
    }
    out.clear();
    scanner.finish(out);
    detections + out.detections.len()
}

fn benchmarks(c: &mut Criterion) {
    let detector = Arc::new(Detector::from_toml(&rules()).expect("benchmark rules compile"));
    assert_eq!(detector.rules().len(), 1000);
    let text = stream();
    let mut out = ScanOutput::default();
    // Warm the lazy DFA cache (it is pooled, so each new scanner below starts warm, as in a
    // long-running gateway) and sanity-check the workload.
    let detections = scan(&detector, &text, 16, &mut out);
    assert!(
        detections > 20,
        "the stream should contain matches, found {detections}"
    );

    let mut group = c.benchmark_group("scan_1MB_1000_rules");
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.sample_size(20);
    // 4 and 16 bytes are token-sized; 4096 shows the per-byte cost without per-call overhead.
    for chunk in [4usize, 16, 4096] {
        group.bench_with_input(
            BenchmarkId::new("chunk_bytes", chunk),
            &chunk,
            |b, &chunk| {
                b.iter(|| scan(&detector, &text, chunk, &mut out));
            },
        );
    }
    group.finish();

    // Per-chunk cost: one `feed` of a 16-byte token, 4,096 of them per iteration.
    let mut group = c.benchmark_group("feed_per_chunk_1000_rules");
    let tokens = &text[..4096 * 16];
    group.throughput(Throughput::Elements(4096));
    group.bench_function("16_byte_chunks", |b| {
        let mut scanner = Scanner::new(Arc::clone(&detector), Scope::Output);
        b.iter(|| {
            for piece in tokens.chunks(16) {
                out.clear();
                scanner.feed(black_box(piece), &mut out);
            }
        });
    });
    group.finish();
}

criterion_group!(benches, benchmarks);
criterion_main!(benches);
