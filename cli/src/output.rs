//! Human output by default, one JSON value per line with `--json`.

use serde_json::Value;

/// Where results go: stdout, as text for people or JSON for scripts. Notes and warnings go to stderr.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Output {
    pub json: bool,
}

impl Output {
    /// Prints a result: `value` as one JSON line, or the human text (nothing when it is empty).
    pub(crate) fn event(&self, value: &Value, human: impl FnOnce() -> String) {
        if self.json {
            println!("{value}");
        } else {
            let text = human();
            if !text.is_empty() {
                println!("{text}");
            }
        }
    }

    /// A note for people (stderr; silent with `--json`).
    pub(crate) fn info(&self, text: &str) {
        if !self.json {
            eprintln!("{text}");
        }
    }
}
