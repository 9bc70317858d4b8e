//! Small text helpers shared by the command line and the daemon's pages.

/// `text` cut to at most `max` characters, with `...` where it was cut.
pub fn clipped(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_string(),
    }
}
