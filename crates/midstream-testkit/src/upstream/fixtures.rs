//! The recorded OpenAI streams in `fixtures/openai-streams/`, embedded at build time so the
//! mock replays them from any working directory.

/// Fixture name (file stem) and bytes, in alphabetical order.
const FIXTURES: [(&str, &[u8]); 6] = [
    (
        "logprobs",
        include_bytes!("../../fixtures/openai-streams/logprobs.sse"),
    ),
    (
        "refusal",
        include_bytes!("../../fixtures/openai-streams/refusal.sse"),
    ),
    (
        "text",
        include_bytes!("../../fixtures/openai-streams/text.sse"),
    ),
    (
        "text-long",
        include_bytes!("../../fixtures/openai-streams/text-long.sse"),
    ),
    (
        "tool-call",
        include_bytes!("../../fixtures/openai-streams/tool-call.sse"),
    ),
    (
        "tool-calls-parallel",
        include_bytes!("../../fixtures/openai-streams/tool-calls-parallel.sse"),
    ),
];

/// The names accepted by [`Scenario::fixture`](super::Scenario::fixture) and [`fixture_bytes`].
pub fn fixture_names() -> Vec<&'static str> {
    FIXTURES.iter().map(|(name, _)| *name).collect()
}

/// The exact bytes of fixture `name` (e.g. `"text-long"`), or `None` if there is none.
pub fn fixture_bytes(name: &str) -> Option<&'static [u8]> {
    FIXTURES
        .iter()
        .find_map(|(known, bytes)| (*known == name).then_some(*bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fixture_file_is_embedded() {
        let on_disk = std::fs::read_dir(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/openai-streams"
        ))
        .expect("the fixtures folder exists")
        .filter_map(|entry| {
            let path = entry.expect("a readable entry").path();
            (path.extension()? == "sse").then(|| path.file_stem()?.to_str().map(str::to_owned))?
        })
        .count();
        assert_eq!(fixture_names().len(), on_disk);
        for name in fixture_names() {
            let bytes = fixture_bytes(name).expect("listed fixtures exist");
            assert!(
                bytes.ends_with(b"data: [DONE]\n\n"),
                "{name} ends with [DONE]"
            );
        }
    }
}
