//! The gateway's per-chunk work on a real recorded OpenAI stream: split the read into frames,
//! find the data field, read the chunk (content, finish reason, usage) with the stream's
//! `ChunkReader`, and feed the content to the scanner — everything the inflight body does per
//! upstream chunk except the socket I/O.
//!
//! Full run:  cargo bench -p midstream-gateway --bench hot_path
//! CI smoke:  cargo bench -p midstream-gateway --bench hot_path -- --test

use std::hint::black_box;
use std::sync::Arc;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use midstream_analysis::{Detector, ScanOutput, Scanner, Scope};
use midstream_gateway::protocol::chunk::ChunkReader;
use midstream_sse::{FrameKind, FrameSplitter, frame_data};

/// The recorded stream, cut into the reads a socket would deliver: one frame each.
fn reads() -> Vec<Bytes> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../midstream-testkit/fixtures/openai-streams/text-long.sse"
    );
    let text = std::fs::read(path).expect("fixture");
    let mut reads = Vec::new();
    FrameSplitter::new(1 << 20)
        .push(Bytes::from(text), |frame| reads.push(frame))
        .expect("frames");
    reads
}

/// Per chunk: split, data field, chunk view, content; optionally the scanner.
fn chunk_path(reads: &[Bytes], scanner: Option<&mut Scanner>, out: &mut ScanOutput) -> usize {
    let mut splitter = FrameSplitter::new(1 << 20);
    let mut chunks = ChunkReader::default();
    let mut frames = Vec::with_capacity(4);
    let mut scanner = scanner;
    let mut content_bytes = 0;
    for read in reads {
        splitter
            .push(read.clone(), |f| frames.push(f))
            .expect("frames");
        for frame in frames.drain(..) {
            let FrameKind::Data(payload) = frame_data(&frame) else {
                continue;
            };
            let Some(chunk) = chunks.read(payload) else {
                continue;
            };
            black_box(chunk.finish_reason());
            black_box(chunk.usage);
            if let Some(text) = chunk.message().and_then(|m| m.content_text()) {
                content_bytes += text.len();
                if let Some(scanner) = scanner.as_deref_mut() {
                    out.clear();
                    scanner.feed(text.as_bytes(), out);
                }
            }
        }
    }
    content_bytes
}

fn bench(c: &mut Criterion) {
    let reads = reads();
    let rules = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../config/intents.toml"
    ))
    .expect("rules");
    let detector = Arc::new(Detector::from_toml(&rules).expect("default rules compile"));
    let mut group = c.benchmark_group("chunk_path");
    group.throughput(Throughput::Elements(reads.len() as u64));
    let mut out = ScanOutput::default();
    group.bench_function("parse_only", |b| {
        b.iter(|| chunk_path(&reads, None, &mut out))
    });
    group.bench_function("parse_and_scan_default_rules", |b| {
        b.iter(|| {
            let mut scanner = Scanner::new(detector.clone(), Scope::Output);
            chunk_path(&reads, Some(&mut scanner), &mut out)
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
