//! CSV files that leave or enter the application: RFC 4180, and safe in a spreadsheet — a cell
//! that a spreadsheet would evaluate as a formula is prefixed with `'`, and the prefix is taken
//! off again on import so an exported file imports as it was.

use crate::AppError;
use std::borrow::Cow;

/// A spreadsheet evaluates a cell that starts with one of these; exports prefix it with `'`.
pub(crate) const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// True for `=…`, and for `'=…`, `''=…` …: what [`neutralise_cell`] prefixes, so that
/// [`restore_cell`] can tell a prefix it added from an apostrophe that was in the data.
pub(crate) fn needs_prefix(value: &str) -> bool {
    value.trim_start_matches('\'').starts_with(FORMULA_STARTS)
}

/// Makes a cell inert for spreadsheets: `=1+1` → `'=1+1`.
pub fn neutralise_cell(value: &str) -> String {
    neutralised(value).into_owned()
}

/// [`neutralise_cell`] without a copy of the cells that need no prefix (nearly all of them).
fn neutralised(value: &str) -> Cow<'_, str> {
    if needs_prefix(value) {
        Cow::Owned(format!("'{value}"))
    } else {
        Cow::Borrowed(value)
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

/// A page of a streamed CSV export, written row by row into one buffer: the bytes
/// [`csv_lines`] writes for the same rows (the same writer, every cell neutralised), without a
/// `String` per cell.
pub(crate) struct CsvPage {
    w: csv::Writer<Vec<u8>>,
}

impl CsvPage {
    /// A page expected to take about `bytes`.
    pub(crate) fn with_capacity(bytes: usize) -> Self {
        Self {
            w: csv::WriterBuilder::new()
                .terminator(csv::Terminator::CRLF)
                .quote_style(csv::QuoteStyle::Necessary)
                .from_writer(Vec::with_capacity(bytes)),
        }
    }

    pub(crate) fn row<const N: usize>(&mut self, cells: [&str; N]) -> Result<(), AppError> {
        self.w
            .write_record(cells.map(neutralised).iter().map(|c| c.as_bytes()))
            .map_err(|e| AppError::Internal(format!("csv: {e}")))
    }

    pub(crate) fn finish(self) -> Result<Vec<u8>, AppError> {
        self.w
            .into_inner()
            .map_err(|e| AppError::Internal(format!("csv: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// A page written row by row is what `csv_lines` writes for the same rows.
        #[test]
        fn a_page_is_written_as_csv_lines_writes_it(
            rows in proptest::collection::vec(proptest::array::uniform3("\\PC*|[=+@\"',\r\n -]{0,4}"), 0..5)
        ) {
            let mut page = CsvPage::with_capacity(0);
            for r in &rows {
                page.row([r[0].as_str(), r[1].as_str(), r[2].as_str()]).unwrap();
            }
            let lines = csv_lines(rows.iter().map(|r| r.to_vec())).unwrap();
            prop_assert_eq!(page.finish().unwrap(), lines);
        }

        #[test]
        fn cells_never_start_a_formula_and_restore_exactly(s in "\\PC*") {
            let out = neutralise_cell(&s);
            prop_assert!(!out.starts_with(FORMULA_STARTS));
            prop_assert_eq!(restore_cell(&out), s.as_str());
        }
    }
}
