//! CSV files that leave or enter the application: RFC 4180, and safe in a spreadsheet — a cell
//! that a spreadsheet would evaluate as a formula is prefixed with `'`, and the prefix is taken
//! off again on import so an exported file imports as it was.

use crate::AppError;

/// A spreadsheet evaluates a cell that starts with one of these; exports prefix it with `'`.
pub(crate) const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// True for `=…`, and for `'=…`, `''=…` …: what [`neutralise_cell`] prefixes, so that
/// [`restore_cell`] can tell a prefix it added from an apostrophe that was in the data.
pub(crate) fn needs_prefix(value: &str) -> bool {
    value.trim_start_matches('\'').starts_with(FORMULA_STARTS)
}

/// Makes a cell inert for spreadsheets: `=1+1` → `'=1+1`.
pub fn neutralise_cell(value: &str) -> String {
    if needs_prefix(value) {
        format!("'{value}")
    } else {
        value.to_string()
    }
}

/// Undoes [`neutralise_cell`] on import, so an exported file imports as it was exported.
pub fn restore_cell(value: &str) -> &str {
    match value.strip_prefix('\'') {
        Some(rest) if needs_prefix(rest) => rest,
        _ => value,
    }
}

/// RFC 4180 CSV (CRLF line ends, quotes only where needed) with every cell neutralised.
pub fn write_csv<I>(header: &[&str], rows: I) -> Result<String, AppError>
where
    I: IntoIterator<Item = Vec<String>>,
{
    let head = std::iter::once(header.iter().map(|h| h.to_string()).collect());
    let bytes = csv_lines(head.chain(rows))?;
    String::from_utf8(bytes).map_err(|e| AppError::Internal(e.to_string()))
}

/// Rows as [`write_csv`] writes them, without a header: one page of a streamed export.
pub fn csv_lines<I>(rows: I) -> Result<Vec<u8>, AppError>
where
    I: IntoIterator<Item = Vec<String>>,
{
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .quote_style(csv::QuoteStyle::Necessary)
        .from_writer(Vec::new());
    let internal = |e: csv::Error| AppError::Internal(format!("csv: {e}"));
    for row in rows {
        w.write_record(row.iter().map(|c| neutralise_cell(c)))
            .map_err(internal)?;
    }
    w.into_inner()
        .map_err(|e| AppError::Internal(format!("csv: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn cells_never_start_a_formula_and_restore_exactly(s in "\\PC*") {
            let out = neutralise_cell(&s);
            prop_assert!(!out.starts_with(FORMULA_STARTS));
            prop_assert_eq!(restore_cell(&out), s.as_str());
        }
    }
}
