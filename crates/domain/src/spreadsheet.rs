//! Cells that leave the application in CSV files must never be evaluated by a spreadsheet.

use std::borrow::Cow;

/// Prefixes a cell starting with `=`, `+`, `-`, `@`, tab or CR with a single quote, so a
/// spreadsheet shows it as text instead of evaluating it as a formula.
pub fn safe_cell(value: &str) -> Cow<'_, str> {
    match value.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => Cow::Owned(format!("'{value}")),
        _ => Cow::Borrowed(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn never_starts_with_a_formula_character(s in "\\PC*") {
            let out = safe_cell(&s);
            prop_assert!(!out.starts_with(['=', '+', '-', '@', '\t', '\r']));
            let quoted = format!("'{}", s);
            prop_assert!(out == s || out == quoted);
        }
    }
}
