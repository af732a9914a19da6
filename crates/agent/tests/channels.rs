//! Images record whether their agent speaks the serial channel by finding
//! the channels marker in the agent binary: it must be there, in the
//! binary as built, and said by `--version`.

use banger_api::agent::CHANNELS_MARKER;

#[test]
fn the_binary_carries_and_says_its_channels() {
    let binary = env!("CARGO_BIN_EXE_banger-agent");
    let out = std::process::Command::new(binary)
        .arg("--version")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains(CHANNELS_MARKER));
    let bytes = std::fs::read(binary).unwrap();
    let marker = CHANNELS_MARKER.as_bytes();
    assert!(bytes.windows(marker.len()).any(|w| w == marker));
}
