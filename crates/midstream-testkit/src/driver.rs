//! Running an external test driver (a Node or Python script that drives a real SDK or a real
//! browser against the gateway) and reading the one JSON summary it prints.

use std::ffi::OsStr;
use std::process::Stdio;

use serde_json::Value;

/// Runs `program` with `args`; panics, naming `what` and showing both outputs, when it fails or
/// prints anything but one JSON value.
pub async fn run_driver<I, S>(what: &str, program: impl AsRef<OsStr>, args: I) -> Value
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let program = program.as_ref();
    let output = tokio::process::Command::new(program)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .await
        .unwrap_or_else(|e| panic!("{what}: cannot run {}: {e}", program.to_string_lossy()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{what} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {stdout}"))
}
