//! One line for an error and its causes, shared by the command line's messages and the task
//! integrations' Causes. Many errors already print their source in their own message ("path:
//! Permission denied (os error 13)"), so a cause is added only when the text does not say it yet.

/// An error and its sources as one line of their messages, each said once.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
