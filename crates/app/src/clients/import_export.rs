//! CSV export and import of clients.

use super::*;

use super::view::ExportRow;
use crate::csv_file::{csv_lines, CsvPage};
use crate::export::{self, Export, Sink, Stopped};
use std::fmt::Write;
use std::sync::Arc;
use store::ClientExportPage;

/// A row of an import file that can't be imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowProblem {
    /// Counting the header as row 1, as a spreadsheet shows it.
    pub row: usize,
    pub column: String,
    pub reason: String,
}

impl std::fmt::Display for RowProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Row {}, {}: {}", self.row, self.column, self.reason)
    }
}

/// The largest import file accepted.
pub const IMPORT_MAX_BYTES: usize = 2 * 1024 * 1024 - 64 * 1024;

/// Columns of the CSV export, in order; import reads the same titles. Tags are captions
/// separated by commas (a caption can't contain one).
pub const EXPORT_COLUMNS: [&str; 12] = [
    "ID",
    "First name",
    "Last name",
    "Email",
    "Phone",
    "Country",
    "City",
    "Role",
    "Status",
    "Language",
    "Registered",
    "Tags",
];

impl App {
    /// Export CSV: the current filtered list, every page of it, in ID order, streamed (see
    /// [`crate::export`]). Needs Clients View and Clients Export; masked for masked viewers,
    /// scoped to their Allowed Client Tags. The export is logged when it ends, with the rows
    /// sent and whether the file was complete.
    pub async fn export_clients(
        self: &Arc<Self>,
        actor: &Actor,
        req: &ClientListRequest,
    ) -> Result<Export, AppError> {
        self.authorize(actor, Section::Clients, Action::View, "export clients")
            .await?;
        self.authorize(actor, Section::Clients, Action::Export, "export clients")
            .await?;
        let filter = self.client_filter(actor, req).await?;
        let (sink, export) = export::channel();
        let (app, actor) = (Arc::clone(self), actor.clone());
        tokio::spawn(async move {
            let (count, stopped) = app.stream_clients(&actor, filter, &sink).await;
            let e = Event::new(Category::Clients, AuditAction::Export, "Clients exported")
                .change("count", "", count.to_string())
                .change("masked", "", if actor.masked() { "Yes" } else { "No" })
                .change("complete", "", export::outcome(stopped));
            // Logged before the last chunk's sender goes: the file ends after its event.
            app.log(Some(&actor), None, e).await;
        });
        Ok(export)
    }

    /// Sends the header and every page; returns the rows sent and why it stopped early, if it did.
    async fn stream_clients(
        &self,
        actor: &Actor,
        filter: ClientFilter,
        sink: &Sink,
    ) -> (usize, Option<Stopped>) {
        let header = vec![EXPORT_COLUMNS.iter().map(|c| c.to_string()).collect()];
        if let Err(stopped) = sink.send(header, csv_lines).await {
            return (0, Some(stopped));
        }
        let (store, scope, filter) = (&self.store, actor.client_scope(), &filter);
        let read = |after: Option<i64>| async move {
            let page = store
                .export_clients_page(scope, filter, after, export::PAGE_ROWS)
                .await?;
            let (rows, next) = (page.rows, page.last_id);
            Ok((page, rows, next))
        };
        let viewer = Arc::new(actor.clone());
        let encode = move |page: ClientExportPage| export_page(&viewer, &page);
        export::stream_pages(sink, None, export::PAGE_ROWS as usize, read, encode).await
    }

    /// Import CSV (Clients Create): every row is checked first; on any problem nothing is
    /// imported and every problem is listed, one per line, in `Invalid["file"]`. A valid file
    /// is imported in one transaction.
    pub async fn import_clients(&self, actor: &Actor, bytes: &[u8]) -> Result<usize, AppError> {
        self.authorize(actor, Section::Clients, Action::Create, "import clients")
            .await?;
        if let Err(e) = self.refuse_masked_entry(actor) {
            self.refused(actor, "import clients", &e.to_string()).await;
            return Err(e);
        }
        let parsed = parse_import(bytes);
        let (valid, mut problems) = match parsed {
            Ok(rows) => rows,
            Err(problems) => (Vec::new(), problems),
        };
        let mut keys: Vec<String> = valid.iter().flat_map(|(_, _, t)| t.clone()).collect();
        keys.sort();
        keys.dedup();
        let known = self.store.tags_by_keys(&keys).await?;
        let mut tag_ids = Vec::with_capacity(valid.len());
        for (row, _, tags) in &valid {
            let mut ids = Vec::new();
            for key in tags {
                match known
                    .iter()
                    .find(|t| domain::tag::caption_key(&t.caption) == *key)
                {
                    Some(t) if actor.client_scope().includes_tag(t.id) => ids.push(t.id),
                    Some(t) => problems.push(RowProblem {
                        row: *row,
                        column: "Tags".into(),
                        reason: format!("{} is outside your Allowed Client Tags", t.caption),
                    }),
                    None => problems.push(RowProblem {
                        row: *row,
                        column: "Tags".into(),
                        reason: format!("no tag {key:?}; create it under Clients › Tags first"),
                    }),
                }
            }
            if !actor.client_scope().admits(&ids) {
                problems.push(RowProblem {
                    row: *row,
                    column: "Tags".into(),
                    reason: "name one of your Allowed Client Tags, or the client would be \
                             outside them"
                        .into(),
                });
            }
            tag_ids.push(ids);
        }
        if problems.is_empty() {
            let keys: Vec<String> = valid.iter().map(|(_, v, _)| v.email.key()).collect();
            let taken = self.store.taken_client_emails(&keys).await?;
            for (row, v, _) in &valid {
                if taken.contains(&v.email.key()) {
                    problems.push(RowProblem {
                        row: *row,
                        column: "Email".into(),
                        reason: "a client with this email already exists".into(),
                    });
                }
            }
        }
        if !problems.is_empty() {
            let mut f = FieldErrors::new();
            f.insert(
                "file",
                problems
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("\n"),
            );
            return Err(AppError::Invalid(f));
        }
        let now = self.now();
        let clients: Vec<NewClient> = valid
            .iter()
            .zip(tag_ids)
            .map(|((_, v, _), tags)| NewClient {
                fields: ClientFields::new(v, tags),
                registered_at: now,
            })
            .collect();
        let e = Event::new(Category::Clients, AuditAction::Import, "Clients imported").change(
            "count",
            "",
            clients.len().to_string(),
        );
        self.store
            .insert_clients(&clients, Some(self.entry(Some(actor), None, e)))
            .await
            .map_err(duplicate_email)
    }
}

/// A page of the export as CSV rows, masked for a masked viewer (through [`ExportRow`]) and
/// neutralised: the page is decoded once and each row written straight into the page's buffer.
fn export_page(actor: &Actor, page: &ClientExportPage) -> Result<Vec<u8>, AppError> {
    let page_rows = page.decode()?;
    let mut csv = CsvPage::with_capacity(page.len_bytes());
    // Reused from row to row.
    let (mut order, mut tags, mut id, mut registered) =
        (Vec::new(), String::new(), String::new(), String::new());
    for c in &page_rows.clients {
        let row = ExportRow::for_actor(actor, c);
        tags.clear();
        for (i, caption) in page_rows.tags_of(c, &mut order).enumerate() {
            if i > 0 {
                tags.push_str(", ");
            }
            tags.push_str(caption);
        }
        id.clear();
        let _ = write!(id, "{}", row.id);
        registered.clear();
        row.registered_at.write_iso(&mut registered);
        let p = &row.personal;
        csv.row([
            &id,
            &p.first_name,
            &p.last_name,
            &p.email,
            &p.phone,
            row.country,
            row.city,
            row.role.label(),
            row.status.label(),
            row.language,
            &registered,
            &tags,
        ])?;
    }
    csv.finish()
}

/// Which input field a column title fills; ID and Registered are accepted and ignored, so an
/// exported file can be imported elsewhere.
fn column_field(title: &str) -> Option<Option<&'static str>> {
    let t = title.trim().to_lowercase().replace('_', " ");
    if t == "id" || t == "registered" {
        return Some(None);
    }
    if t == "tags" {
        return Some(Some("tags"));
    }
    client::FIELDS
        .iter()
        .find(|(code, label)| t == label.to_lowercase() || t == code.replace('_', " "))
        .map(|(code, _)| Some(*code))
}

/// A valid row: its number, the client, and the tag captions it names (lower-cased keys).
type ParsedRow = (usize, ValidClient, Vec<String>);
type ParsedRows = (Vec<ParsedRow>, Vec<RowProblem>);

/// Reads and validates the whole file. Row numbers count the header as row 1.
fn parse_import(bytes: &[u8]) -> Result<ParsedRows, Vec<RowProblem>> {
    let file_problem = |reason: String| {
        vec![RowProblem {
            row: 1,
            column: "file".into(),
            reason,
        }]
    };
    if bytes.len() > IMPORT_MAX_BYTES {
        return Err(file_problem("the file is larger than 1.9 MiB".into()));
    }
    let text = std::str::from_utf8(bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes))
        .map_err(|_| file_problem("the file is not UTF-8 text".into()))?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| file_problem(format!("not a CSV file: {e}")))?
        .clone();
    if headers.iter().all(|h| h.trim().is_empty()) {
        return Err(file_problem(
            "the file is empty; the first row must name the columns".into(),
        ));
    }
    let mut problems = Vec::new();
    let mut columns: Vec<Option<&'static str>> = Vec::new();
    for h in headers.iter() {
        match column_field(restore_cell(h)) {
            Some(f) => {
                if f.is_some() && columns.contains(&f) {
                    problems.push(RowProblem {
                        row: 1,
                        column: h.to_string(),
                        reason: "this column appears twice".into(),
                    });
                }
                columns.push(f);
            }
            None => {
                problems.push(RowProblem {
                    row: 1,
                    column: h.to_string(),
                    reason: format!("unknown column; use {}", EXPORT_COLUMNS.join(", ")),
                });
                columns.push(None);
            }
        }
    }
    let optional = ["city", "status"];
    for (code, label) in client::FIELDS {
        if !optional.contains(&code) && !columns.contains(&Some(code)) {
            problems.push(RowProblem {
                row: 1,
                column: label.into(),
                reason: "this column is missing".into(),
            });
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let label_of = |code: &str| {
        client::FIELDS
            .iter()
            .find(|(c, _)| *c == code)
            .map(|(_, l)| *l)
            .unwrap_or("")
    };
    let mut valid = Vec::new();
    let mut seen = std::collections::HashMap::new();
    for (i, record) in reader.records().enumerate() {
        let row = i + 2;
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                problems.push(RowProblem {
                    row,
                    column: "row".into(),
                    reason: format!("can't be read: {e}"),
                });
                continue;
            }
        };
        if record.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        if record.len() > columns.len() {
            problems.push(RowProblem {
                row,
                column: "row".into(),
                reason: format!(
                    "has {} cells but the header names {} columns",
                    record.len(),
                    columns.len()
                ),
            });
            continue;
        }
        let mut input = ClientInput {
            status: "active".into(),
            ..Default::default()
        };
        let mut tags = Vec::new();
        for (cell, field) in record.iter().zip(&columns) {
            let value = restore_cell(cell).to_string();
            match field {
                Some("first_name") => input.first_name = value,
                Some("last_name") => input.last_name = value,
                Some("email") => input.email = value,
                Some("phone") => input.phone = value,
                Some("country") => input.country = value,
                Some("city") => input.city = value,
                Some("role") => input.role = value,
                Some("status") if !value.trim().is_empty() => input.status = value,
                Some("language") => input.language = value,
                Some("tags") => {
                    tags = value
                        .split(',')
                        .map(|t| {
                            domain::tag::caption_key(
                                t.split_whitespace().collect::<Vec<_>>().join(" ").as_str(),
                            )
                        })
                        .filter(|t| !t.is_empty())
                        .collect();
                }
                _ => {}
            }
        }
        match client::validate(&input) {
            Ok(v) => {
                if let Some(first) = seen.insert(v.email.key(), row) {
                    problems.push(RowProblem {
                        row,
                        column: "Email".into(),
                        reason: format!("the same email is in row {first}"),
                    });
                }
                valid.push((row, v, tags));
            }
            Err(errors) => {
                for (field, reason) in errors {
                    problems.push(RowProblem {
                        row,
                        column: label_of(field).into(),
                        reason,
                    });
                }
            }
        }
    }
    if valid.is_empty() && problems.is_empty() {
        return Err(file_problem("the file has no client rows".into()));
    }
    Ok((valid, problems))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::csv_file::{needs_prefix, neutralise_cell, write_csv, FORMULA_STARTS};
    use proptest::prelude::*;

    fn read_back(csv_text: &str) -> Vec<Vec<String>> {
        csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(csv_text.as_bytes())
            .records()
            .map(|r| r.unwrap().iter().map(str::to_string).collect())
            .collect()
    }

    #[test]
    fn formula_cells_are_prefixed_and_quotes_follow_rfc_4180() {
        let out = write_csv(
            &["A", "B"],
            vec![vec!["=1+1".into(), "say \"hi\", then go".into()]],
        )
        .unwrap();
        assert_eq!(out, "A,B\r\n'=1+1,\"say \"\"hi\"\", then go\"\r\n");
        assert_eq!(neutralise_cell("+44"), "'+44");
        assert_eq!(neutralise_cell("\tx"), "'\tx");
        assert_eq!(neutralise_cell("J****"), "J****");
        assert_eq!(restore_cell("'+44"), "+44");
        assert_eq!(restore_cell("'quoted"), "'quoted");
        assert_eq!(neutralise_cell("'=x"), "''=x");
        assert_eq!(restore_cell("''=x"), "'=x");
    }

    proptest! {
        /// Parse the export back: no cell starts with a formula character, and every cell is
        /// the original, or the original behind one `'` when it started with one (after any
        /// apostrophes); restoring gives the original back.
        #[test]
        fn export_escaping(rows in proptest::collection::vec(
            proptest::collection::vec("[=+\\-@\t\r\n\",' a-zA-Zé0-9]{0,12}", 3), 0..8)
        ) {
            let out = write_csv(&["A", "B", "C"], rows.clone()).unwrap();
            let back = read_back(&out);
            prop_assert_eq!(back.len(), rows.len() + 1);
            for (orig, got) in rows.iter().zip(&back[1..]) {
                prop_assert_eq!(orig.len(), got.len());
                for (o, g) in orig.iter().zip(got) {
                    prop_assert!(!g.starts_with(FORMULA_STARTS), "{:?}", g);
                    if needs_prefix(o) {
                        prop_assert_eq!(g, &format!("'{o}"));
                    } else {
                        prop_assert_eq!(g, o);
                    }
                    prop_assert_eq!(restore_cell(g), o.as_str());
                }
            }
        }
    }

    #[test]
    fn import_reports_row_column_and_reason() {
        let file = "First name,Last name,Email,Phone,Country,Role,Language\r\n\
                    Ann,Lee,ann@example.com,+44 20 7946 0958,GB,Investor,en\r\n\
                    Bob,,bob@example,+1 212 555 0100,XX,Investor,en\r\n\
                    Cy,Ode,ANN@example.com,'+49 30 1234567,DE,both,de\r\n";
        let (valid, problems) = parse_import(file.as_bytes()).unwrap();
        assert_eq!(valid.len(), 2);
        let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert!(
            lines.contains(&"Row 3, Last name: Enter the client's last name".to_string()),
            "{lines:?}"
        );
        assert!(
            lines.iter().any(|l| l.starts_with("Row 3, Email:")),
            "{lines:?}"
        );
        assert!(lines.contains(&"Row 3, Country: XX is not an ISO 3166 country code".to_string()));
        assert!(
            lines.contains(&"Row 4, Email: the same email is in row 2".to_string()),
            "{lines:?}"
        );
        assert_eq!(
            valid[1].1.phone, "+49301234567",
            "an exported (neutralised) phone imports"
        );
    }

    #[test]
    fn import_needs_the_columns() {
        let problems = parse_import(b"Name,Email\r\nAnn,ann@example.com\r\n").unwrap_err();
        let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("Row 1, Name: unknown column")),
            "{lines:?}"
        );
        assert!(lines.contains(&"Row 1, First name: this column is missing".to_string()));
        assert!(parse_import(b"").is_err());
    }
}
