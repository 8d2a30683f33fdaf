//! The client directory. Every offered search and sort is an indexed range or an index-ordered
//! scan (see migration 0002): prefix search is `key >= prefix AND key < upper`, never
//! `LIKE '%…'`.

use super::events::append_in;
use super::{decide, decode, lock_rows, with_target_id, BackendStore, Db, DbRow, Tx, DIALECT};
use crate::rows::ClientRow;
use crate::*;
use async_trait::async_trait;
use const_format::formatcp;
use domain::ClientScope;
use sqlx::Row;

pub(crate) const CLIENT_COLS: &str =
    "id, first_name, last_name, email, phone, country, city, role, status, \
    language, registered_at, updated_at, version";
/// An export page's columns, as the page's query reads them.
const EXPORT_COLS: &str = "id, first_name, last_name, email, phone, country, city, role, status, \
    language, registered_at, tag_list";

/// What an export page's statement answers, in one row: the page's row count, its last id,
/// its rows as one JSON text (in the order the page's query lists them; each row an array of
/// texts in the order of [`crate::ExportedClient`]) and every tag's id and caption in caption
/// order as another; `FROM (` the page's query follows, then `) AS page`.
const EXPORT_PAGE: &str = formatcp!(
    "SELECT COUNT(*), MAX(id), COALESCE({agg}({open}CAST(id AS TEXT), first_name, last_name, \
     email, phone, country, city, role, status, language, CAST(registered_at AS TEXT), \
     tag_list{close}){text}, '[]'), \
     (SELECT COALESCE({agg}({open}CAST(id AS TEXT), caption{close}){text}, '[]') \
       FROM (SELECT id, caption FROM tags ORDER BY caption_key) AS by_caption) \
     FROM (",
    agg = DIALECT.json_agg,
    open = DIALECT.json_row.0,
    close = DIALECT.json_row.1,
    text = DIALECT.json_text,
);

/// Rows per multi-row INSERT: 12 binds each stays far below both databases' limits.
pub(super) const CLIENT_BATCH: usize = 1000;

pub(super) fn client_row(r: &DbRow) -> Result<ClientRecord> {
    decode::<ClientRow>(r)?.try_into()
}

/// `AND` the client carries one of these tags: one probe of the `client_tags` primary
/// key per client looked at. No tag at all matches no client.
pub(super) fn push_any_tag<'a>(qb: &mut sqlx::QueryBuilder<'a, Db>, tags: &[i64]) {
    if tags.is_empty() {
        qb.push(" AND 1 = 0");
        return;
    }
    qb.push(" AND ");
    push_carries_tag(qb, "clients.id", tags, "");
}

/// `EXISTS`: the client `client_id` (a column) carries one of these (non-empty) tags.
/// `per_row` (`LIMIT 1 OFFSET 0`) keeps PostgreSQL from turning the test into a hash of
/// every client carrying the tags, built for each query (8 ms for one tag of 40,000
/// clients), where a page needs a few dozen probes: the event log's CASE and a count's
/// SUM. In a WHERE it is left out, so PostgreSQL may drive a list from the tag's index.
pub(super) fn push_carries_tag<'a>(
    qb: &mut sqlx::QueryBuilder<'a, Db>,
    client_id: &str,
    tags: &[i64],
    per_row: &str,
) {
    qb.push(format!(
        "EXISTS (SELECT 1 FROM client_tags st WHERE st.client_id = {client_id} AND st.tag_id IN ("
    ));
    let mut sep = qb.separated(", ");
    for t in tags {
        sep.push_bind(*t);
    }
    qb.push(format!("){per_row})"));
}

/// The client's row (`clients.tag_list`, kept from `client_tags` by a trigger; see migration
/// 0014) holds one of the scope's tags. Read from the row, or from an index entry that carries
/// the list, it costs no lookup: a search in a scope of 4% of the clients looks at 25 clients
/// per result.
pub(super) fn push_in_scope(
    qb: &mut sqlx::QueryBuilder<'_, Db>,
    tags: &std::collections::BTreeSet<i64>,
) {
    if tags.is_empty() {
        qb.push("1 = 0");
        return;
    }
    let mut sep = qb.separated(" OR ");
    sep.push_unseparated("(");
    for t in tags {
        sep.push("clients.tag_list LIKE ");
        sep.push_bind_unseparated(format!("%,{t},%"));
    }
    sep.push_unseparated(")");
}

/// See [`push_carries_tag`].
pub(super) const PER_ROW: &str = " LIMIT 1 OFFSET 0";

/// Fills each record's tags, by caption, in one query.
pub(super) async fn tags_for_clients<'e, E>(db: E, clients: &mut [ClientRecord]) -> Result<()>
where
    E: sqlx::Executor<'e, Database = Db>,
{
    if clients.is_empty() {
        return Ok(());
    }
    let mut qb = sqlx::QueryBuilder::<Db>::new(
        "SELECT ct.client_id, t.id, t.caption FROM client_tags ct JOIN tags t ON t.id = ct.tag_id \
         WHERE ct.client_id IN (",
    );
    let mut sep = qb.separated(", ");
    for c in clients.iter() {
        sep.push_bind(c.id);
    }
    qb.push(") ORDER BY t.caption_key");
    let rows = qb.build().fetch_all(db).await.map_err(map_err)?;
    // By id: an export's page holds thousands of clients, and a search per tag row would cost
    // the square of that.
    let at: std::collections::HashMap<i64, usize> =
        clients.iter().enumerate().map(|(i, c)| (c.id, i)).collect();
    for r in rows {
        let client_id: i64 = r.try_get(0).map_err(map_err)?;
        let tag = TagRef {
            id: r.try_get(1).map_err(map_err)?,
            caption: r.try_get(2).map_err(map_err)?,
        };
        if let Some(&i) = at.get(&client_id) {
            clients[i].tags.push(tag);
        }
    }
    Ok(())
}

/// Adds and removes client-tag pairs and keeps each tag's `clients` counter in step.
pub(super) async fn change_client_tags_in(
    tx: &mut Tx,
    add: &[(i64, i64)],
    remove: &[(i64, i64)],
) -> Result<()> {
    let mut delta: std::collections::BTreeMap<i64, i64> = Default::default();
    for chunk in add.chunks(CLIENT_BATCH) {
        // With the client's email key, status and country, so a tag's clients can be read by
        // email and counted from the index (migrations 0014 and 0020; their triggers keep the
        // copies whatever writes). `column1`, `column2`: the names both databases give VALUES.
        let mut qb = sqlx::QueryBuilder::<Db>::new(
            "INSERT INTO client_tags (client_id, tag_id, email_key, status, country) \
             SELECT c.id, v.column2, c.email_key, c.status, c.country FROM clients c JOIN (",
        );
        qb.push_values(chunk, |mut b, (c, t)| {
            b.push_bind(*c).push_bind(*t);
        });
        qb.push(") AS v ON c.id = v.column1");
        let added = qb.build().execute(&mut **tx).await.map_err(map_err)?;
        if added.rows_affected() != chunk.len() as u64 {
            // A pair whose client is not there (the join left it out): nothing is written.
            return Err(StoreError::NotFound);
        }
        for (_, t) in chunk {
            *delta.entry(*t).or_default() += 1;
        }
    }
    for (c, t) in remove {
        let gone = sqlx::query("DELETE FROM client_tags WHERE client_id = $1 AND tag_id = $2")
            .bind(*c)
            .bind(*t)
            .execute(&mut **tx)
            .await
            .map_err(map_err)?;
        *delta.entry(*t).or_default() -= gone.rows_affected() as i64;
    }
    for (tag, n) in delta {
        if n != 0 {
            sqlx::query("UPDATE tags SET clients = clients + $2 WHERE id = $1")
                .bind(tag)
                .bind(n)
                .execute(&mut **tx)
                .await
                .map_err(map_err)?;
        }
    }
    Ok(())
}

/// The (client, tag) pairs these clients carry among `tags` (all of their tags when
/// `tags` is `None`), read in the writing transaction.
pub(super) async fn client_tag_pairs_in(
    tx: &mut Tx,
    ids: &[i64],
    tags: Option<&[i64]>,
) -> Result<Vec<(i64, i64)>> {
    if ids.is_empty() || tags.is_some_and(|t| t.is_empty()) {
        return Ok(Vec::new());
    }
    let mut qb = sqlx::QueryBuilder::<Db>::new(
        "SELECT client_id, tag_id FROM client_tags WHERE client_id IN (",
    );
    let mut sep = qb.separated(", ");
    for id in ids {
        sep.push_bind(*id);
    }
    qb.push(")");
    if let Some(tags) = tags {
        qb.push(" AND tag_id IN (");
        let mut sep = qb.separated(", ");
        for t in tags {
            sep.push_bind(*t);
        }
        qb.push(")");
    }
    let rows = qb.build().fetch_all(&mut **tx).await.map_err(map_err)?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get(0).map_err(map_err)?,
                r.try_get(1).map_err(map_err)?,
            ))
        })
        .collect()
}

/// Sets one client's tags to exactly `tags`.
pub(super) async fn set_client_tags_in(tx: &mut Tx, client_id: i64, tags: &[i64]) -> Result<()> {
    let held: Vec<i64> = client_tag_pairs_in(tx, &[client_id], None)
        .await?
        .into_iter()
        .map(|(_, t)| t)
        .collect();
    let add: Vec<(i64, i64)> = tags
        .iter()
        .filter(|t| !held.contains(t))
        .map(|t| (client_id, *t))
        .collect();
    let remove: Vec<(i64, i64)> = held
        .iter()
        .filter(|t| !tags.contains(t))
        .map(|t| (client_id, *t))
        .collect();
    change_client_tags_in(tx, &add, &remove).await
}

pub(super) fn push_prefix<'a>(qb: &mut sqlx::QueryBuilder<'a, Db>, column: &str, prefix: &str) {
    qb.push(format!("({column} >= "));
    qb.push_bind(prefix.to_string());
    if let Some(upper) = crate::clients::prefix_upper(prefix) {
        qb.push(format!(" AND {column} < "));
        qb.push_bind(upper);
    }
    qb.push(")");
}

/// The scope, then the filter. Every read of clients goes through here.
pub(super) fn client_filters<'a>(
    qb: &mut sqlx::QueryBuilder<'a, Db>,
    scope: &ClientScope,
    f: &'a ClientFilter,
) {
    qb.push(" WHERE 1 = 1");
    if let ClientScope::Tags(tags) = scope {
        // Checked on each client the other conditions select, from its row's copy of its tags
        // (a plain scoped list reads the tags' index instead; see `scope_page_by_tags`).
        qb.push(" AND ");
        push_in_scope(qb, tags);
    }
    if !f.tags.is_empty() {
        push_any_tag(qb, &f.tags);
    }
    match &f.search {
        None => {}
        Some(ClientSearch::Id(id)) => {
            qb.push(" AND id = ");
            qb.push_bind(*id);
        }
        Some(ClientSearch::Name(p)) => {
            qb.push(" AND (");
            push_prefix(qb, "name_key", p);
            qb.push(" OR ");
            push_prefix(qb, "last_key", p);
            qb.push(")");
        }
        Some(ClientSearch::Email(p)) => {
            qb.push(" AND ");
            push_prefix(qb, "email_key", p);
        }
        Some(ClientSearch::Phone(p)) => {
            qb.push(" AND ");
            push_prefix(qb, "phone", p);
        }
    }
    if let Some(c) = &f.country {
        qb.push(" AND country = ");
        qb.push_bind(c.as_str());
    }
    if let Some(r) = f.role {
        qb.push(" AND role = ");
        qb.push_bind(r.code());
    }
    if let Some(s) = f.status {
        qb.push(" AND status = ");
        qb.push_bind(s.code());
    }
    if let Some(t) = f.registered_from {
        qb.push(" AND registered_at >= ");
        qb.push_bind(t.millis());
    }
    if let Some(t) = f.registered_before {
        qb.push(" AND registered_at < ");
        qb.push_bind(t.millis());
    }
}

/// A count whose only conditions are tags (the scope, the tag filter or both) reads the
/// tags' index, not the clients: up to `cap + 1` entries of one tag's range instead of
/// a probe for every client until `cap + 1` carry the tag (25 times as many rows for a
/// tag on 4% of the clients). `None` when other conditions apply.
pub(super) fn count_by_tags<'a>(
    scope: &ClientScope,
    filter: &ClientFilter,
    cap: i64,
) -> Option<sqlx::QueryBuilder<'a, Db>> {
    let only_tags = ClientFilter {
        tags: filter.tags.clone(),
        ..Default::default()
    } == *filter;
    let scope_tags: Option<Vec<i64>> = scope.tags().map(|t| t.iter().copied().collect());
    let (drive, check) = match (scope_tags, filter.tags.is_empty()) {
        _ if !only_tags => return None,
        (None, true) => return None,
        (Some(s), true) => (s, None),
        (None, false) => (filter.tags.clone(), None),
        (Some(s), false) => (filter.tags.clone(), Some(s)),
    };
    let mut qb = sqlx::QueryBuilder::<Db>::new(if drive.len() == 1 {
        // (tag_id, client_id) is unique: one tag's entries are distinct clients.
        "SELECT COUNT(*) FROM (SELECT ct.client_id FROM client_tags ct WHERE ct.tag_id IN ("
    } else {
        "SELECT COUNT(*) FROM (SELECT DISTINCT ct.client_id FROM client_tags ct WHERE ct.tag_id IN ("
    });
    if drive.is_empty() {
        qb.push("NULL");
    }
    let mut sep = qb.separated(", ");
    for t in &drive {
        sep.push_bind(*t);
    }
    qb.push(")");
    if let Some(check) = check {
        qb.push(" AND EXISTS (SELECT 1 FROM client_tags st WHERE st.client_id = ct.client_id AND st.tag_id IN (");
        if check.is_empty() {
            qb.push("NULL");
        }
        let mut sep = qb.separated(", ");
        for t in &check {
            sep.push_bind(*t);
        }
        qb.push("))");
    }
    qb.push(" LIMIT ");
    qb.push_bind(cap + 1);
    qb.push(") AS matching");
    Some(qb)
}

/// A scoped list in id order with no other condition reads its page straight from the
/// tags' index: for each scope tag the next ids after the cursor (one index range each),
/// merged. Probing clients in id order instead reads 25 for each one of a 4% scope, and
/// PostgreSQL's generic plan for it walked the tag's whole range up to the cursor.
pub(super) fn scope_page_by_tags<'a>(
    select: &str,
    scope: &ClientScope,
    q: &'a ClientQuery,
) -> Option<sqlx::QueryBuilder<'a, Db>> {
    let tags = scope.tags().filter(|t| !t.is_empty())?;
    if q.sort != ClientSort::Id || q.filter != ClientFilter::default() {
        return None;
    }
    let (dir, after_op) = if q.descending {
        ("DESC", "<")
    } else {
        ("ASC", ">")
    };
    let offset = if q.after_id.is_some() { 0 } else { q.offset };
    let mut qb = sqlx::QueryBuilder::<Db>::new(format!(
        "{select} FROM clients WHERE id IN (SELECT client_id FROM ("
    ));
    for (i, tag) in tags.iter().enumerate() {
        if i > 0 {
            qb.push(" UNION ");
        }
        qb.push("SELECT client_id FROM (SELECT client_id FROM client_tags WHERE tag_id = ");
        qb.push_bind(*tag);
        if let Some(after) = q.after_id {
            qb.push(format!(" AND client_id {after_op} "));
            qb.push_bind(after);
        }
        qb.push(format!(" ORDER BY client_id {dir} LIMIT "));
        qb.push_bind(offset + q.limit);
        qb.push(format!(") AS t{i}"));
    }
    qb.push(format!(") AS page_ids ORDER BY client_id {dir} LIMIT "));
    qb.push_bind(q.limit);
    if offset > 0 {
        qb.push(" OFFSET ");
        qb.push_bind(offset);
    }
    qb.push(format!(") ORDER BY id {dir}"));
    Some(qb)
}

/// The scope's tags and the prefix, when the only condition besides the scope is an email-prefix
/// search: what the tags' email index (migration 0014) answers on its own.
fn scoped_email_prefix<'f>(
    scope: &'f ClientScope,
    filter: &'f ClientFilter,
) -> Option<(&'f std::collections::BTreeSet<i64>, &'f str)> {
    let tags = scope.tags().filter(|t| !t.is_empty())?;
    let Some(ClientSearch::Email(prefix)) = &filter.search else {
        return None;
    };
    let only_search = ClientFilter {
        search: filter.search.clone(),
        ..Default::default()
    } == *filter;
    only_search.then_some((tags, prefix.as_str()))
}

/// A scoped email-prefix search in email order reads its page from the tags' email index: for
/// each scope tag, that tag's clients whose email starts with the prefix, in email order (one
/// index range each), merged. Checking the scope on every client with the prefix instead reads
/// 25 of them for each one of a scope of 4% of the clients.
fn scope_search_by_email<'a>(
    select: &str,
    scope: &ClientScope,
    q: &ClientQuery,
) -> Option<sqlx::QueryBuilder<'a, Db>> {
    let (tags, prefix) = scoped_email_prefix(scope, &q.filter)?;
    if q.sort != ClientSort::Email {
        return None;
    }
    let dir = if q.descending { "DESC" } else { "ASC" };
    let mut qb = sqlx::QueryBuilder::<Db>::new(format!(
        "{select} FROM clients WHERE id IN (SELECT client_id FROM ("
    ));
    for (i, tag) in tags.iter().enumerate() {
        if i > 0 {
            qb.push(" UNION ");
        }
        qb.push(
            "SELECT client_id, email_key FROM (SELECT client_id, email_key FROM client_tags WHERE tag_id = ",
        );
        qb.push_bind(*tag);
        qb.push(" AND ");
        push_prefix(&mut qb, "email_key", prefix);
        qb.push(format!(" ORDER BY email_key {dir} LIMIT "));
        qb.push_bind(q.offset + q.limit);
        qb.push(format!(") AS t{i}"));
    }
    qb.push(format!(") AS page_ids ORDER BY email_key {dir} LIMIT "));
    qb.push_bind(q.limit);
    if q.offset > 0 {
        qb.push(" OFFSET ");
        qb.push_bind(q.offset);
    }
    qb.push(format!(") ORDER BY email_key {dir}"));
    Some(qb)
}

/// The exact count, up to `cap + 1`, of a scoped email-prefix search: the tags' email index
/// ranges, not the clients (see [`scope_search_by_email`]).
fn count_scoped_email_prefix<'a>(
    scope: &ClientScope,
    filter: &ClientFilter,
    cap: i64,
) -> Option<sqlx::QueryBuilder<'a, Db>> {
    let (tags, prefix) = scoped_email_prefix(scope, filter)?;
    let mut qb = sqlx::QueryBuilder::<Db>::new(if tags.len() == 1 {
        // (tag_id, client_id) is unique: one tag's entries are distinct clients.
        "SELECT COUNT(*) FROM (SELECT client_id FROM client_tags WHERE tag_id IN ("
    } else {
        "SELECT COUNT(*) FROM (SELECT DISTINCT client_id FROM client_tags WHERE tag_id IN ("
    });
    let mut sep = qb.separated(", ");
    for t in tags {
        sep.push_bind(*t);
    }
    qb.push(") AND ");
    push_prefix(&mut qb, "email_key", prefix);
    qb.push(" LIMIT ");
    qb.push_bind(cap + 1);
    qb.push(") AS matching");
    Some(qb)
}

/// One page of the list: `select` (the columns, or an EXPLAIN in tests) followed by the
/// filters, the keyset or offset, the order and the limit.
///
/// A scoped list looks at many clients (25 for each one in a 4% scope) before it has a
/// page: it finds the page's ids first, from the indexes alone, and only then reads the
/// page's rows (on PostgreSQL a row read per client looked at cost more than the probe).
pub(crate) fn client_list_query<'a>(
    select: &str,
    scope: &ClientScope,
    q: &'a ClientQuery,
) -> sqlx::QueryBuilder<'a, Db> {
    if let Some(qb) = scope_page_by_tags(select, scope, q) {
        return qb;
    }
    if let Some(qb) = scope_search_by_email(select, scope, q) {
        return qb;
    }
    let scoped = !scope.is_all();
    let mut qb = sqlx::QueryBuilder::<Db>::new(if scoped {
        format!("{select} FROM clients WHERE id IN (SELECT id FROM clients")
    } else {
        format!("{select} FROM clients")
    });
    client_filters(&mut qb, scope, &q.filter);
    let dir = if q.descending { "DESC" } else { "ASC" };
    let keyset = q.sort == ClientSort::Id && q.after_id.is_some();
    if let (true, Some(after)) = (keyset, q.after_id) {
        qb.push(if q.descending {
            " AND id < "
        } else {
            " AND id > "
        });
        qb.push_bind(after);
    }
    let order = match q.sort {
        ClientSort::Id => format!("id {dir}"),
        ClientSort::Name => format!("name_key {dir}, id {dir}"),
        // Unique, so it needs no tie-breaker.
        ClientSort::Email => format!("email_key {dir}"),
        ClientSort::Registered => format!("registered_at {dir}, id {dir}"),
    };
    qb.push(format!(" ORDER BY {order} LIMIT "));
    qb.push_bind(q.limit);
    if !keyset && q.offset > 0 {
        qb.push(" OFFSET ");
        qb.push_bind(q.offset);
    }
    if scoped {
        qb.push(format!(") ORDER BY {order}"));
    }
    qb
}

pub(super) async fn insert_clients_in(tx: &mut Tx, clients: &[NewClient]) -> Result<()> {
    for chunk in clients.chunks(CLIENT_BATCH) {
        let tagged = chunk.iter().any(|c| !c.fields.tags.is_empty());
        let mut qb = sqlx::QueryBuilder::<Db>::new(
            "INSERT INTO clients (first_name, last_name, name_key, last_key, email, email_key, phone, \
             country, city, role, status, language, registered_at, updated_at, tag_list) ",
        );
        qb.push_values(chunk, |mut b, c| {
            let f = &c.fields;
            b.push_bind(f.first_name.clone())
                .push_bind(f.last_name.clone())
                .push_bind(domain::client::name_key(&f.first_name, &f.last_name))
                .push_bind(f.last_name.to_lowercase())
                .push_bind(f.email.clone())
                .push_bind(f.email_key.clone())
                .push_bind(f.phone.clone())
                .push_bind(f.country.clone())
                .push_bind(f.city.clone())
                .push_bind(f.role.code())
                .push_bind(f.status.code())
                .push_bind(f.language.clone())
                .push_bind(c.registered_at.millis())
                .push_bind(c.registered_at.millis())
                // Written with the row, so the trigger that keeps it finds nothing to do
                // (PostgreSQL: no second row version per client).
                .push_bind(crate::clients::tag_list(&f.tags));
        });
        if !tagged {
            qb.build().execute(&mut **tx).await.map_err(map_err)?;
            continue;
        }
        // The new ids by email (unique), whatever order RETURNING gives them in.
        qb.push(" RETURNING id, email_key");
        let rows = qb.build().fetch_all(&mut **tx).await.map_err(map_err)?;
        let mut ids = std::collections::HashMap::with_capacity(rows.len());
        for r in &rows {
            ids.insert(
                r.try_get::<String, _>(1).map_err(map_err)?,
                r.try_get::<i64, _>(0).map_err(map_err)?,
            );
        }
        let pairs: Vec<(i64, i64)> = chunk
            .iter()
            .flat_map(|c| {
                let id = ids.get(&c.fields.email_key).copied();
                c.fields
                    .tags
                    .iter()
                    .filter_map(move |t| id.map(|id| (id, *t)))
            })
            .collect();
        change_client_tags_in(tx, &pairs, &[]).await?;
    }
    count_clients_in(tx, clients.len()).await
}

/// Keeps the `row_counts` total in step with inserts, in the inserting transaction.
pub(super) async fn count_clients_in(tx: &mut Tx, added: usize) -> Result<()> {
    sqlx::query("UPDATE row_counts SET n = n + $1 WHERE name = 'clients'")
        .bind(added as i64)
        .execute(&mut **tx)
        .await
        .map_err(map_err)?;
    Ok(())
}

#[async_trait]
impl ClientStore for BackendStore {
    async fn insert_client(&self, client: &NewClient, event: AuditEntry) -> Result<i64> {
        let mut tx = self.begin().await?;
        let f = &client.fields;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO clients (first_name, last_name, name_key, last_key, email, email_key, phone, \
             country, city, role, status, language, registered_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13) RETURNING id",
        )
        .bind(&f.first_name)
        .bind(&f.last_name)
        .bind(domain::client::name_key(&f.first_name, &f.last_name))
        .bind(f.last_name.to_lowercase())
        .bind(&f.email)
        .bind(&f.email_key)
        .bind(&f.phone)
        .bind(&f.country)
        .bind(&f.city)
        .bind(f.role.code())
        .bind(f.status.code())
        .bind(&f.language)
        .bind(client.registered_at.millis())
        .fetch_one(&mut *tx)
        .await
        .map_err(map_err)?;
        set_client_tags_in(&mut tx, id, &f.tags).await?;
        count_clients_in(&mut tx, 1).await?;
        append_in(&mut tx, with_target_id(event, id)).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(id)
    }

    async fn insert_clients(
        &self,
        clients: &[NewClient],
        event: Option<AuditEntry>,
    ) -> Result<usize> {
        let mut tx = self.begin().await?;
        insert_clients_in(&mut tx, clients).await?;
        if let Some(event) = event {
            append_in(&mut tx, event).await?;
        }
        tx.commit().await.map_err(map_err)?;
        Ok(clients.len())
    }

    async fn client_by_id(&self, scope: &ClientScope, id: i64) -> Result<Option<ClientRecord>> {
        let unfiltered = ClientFilter::default();
        let mut qb = sqlx::QueryBuilder::<Db>::new(formatcp!("SELECT {CLIENT_COLS} FROM clients"));
        client_filters(&mut qb, scope, &unfiltered);
        qb.push(" AND id = ");
        qb.push_bind(id);
        let row = qb
            .build()
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        let Some(row) = row else { return Ok(None) };
        let mut found = [client_row(&row)?];
        tags_for_clients(&self.pool, &mut found).await?;
        let [found] = found;
        Ok(Some(found))
    }

    async fn list_clients(
        &self,
        scope: &ClientScope,
        q: &ClientQuery,
    ) -> Result<Vec<ClientRecord>> {
        let rows = client_list_query(formatcp!("SELECT {CLIENT_COLS}"), scope, q)
            .build()
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        let mut clients = rows.iter().map(client_row).collect::<Result<Vec<_>>>()?;
        tags_for_clients(&self.pool, &mut clients).await?;
        Ok(clients)
    }

    async fn export_clients_page(
        &self,
        scope: &ClientScope,
        filter: &ClientFilter,
        after_id: Option<i64>,
        limit: i64,
    ) -> Result<ClientExportPage> {
        let q = ClientQuery {
            filter: filter.clone(),
            sort: ClientSort::Id,
            descending: false,
            after_id,
            offset: 0,
            limit,
        };
        // The list's own query (scope, filter, keyset), as the subquery the aggregate reads.
        let mut qb = client_list_query(formatcp!("{EXPORT_PAGE}SELECT {EXPORT_COLS}"), scope, &q);
        qb.push(") AS page");
        let (rows, last_id, clients, tags): (i64, Option<i64>, String, String) = qb
            .build_query_as()
            .fetch_one(self.export_reads())
            .await
            .map_err(map_err)?;
        Ok(ClientExportPage::new(rows, last_id, clients, tags))
    }

    async fn count_clients(
        &self,
        scope: &ClientScope,
        filter: &ClientFilter,
        cap: i64,
    ) -> Result<ClientCount> {
        let capped = |n: i64| ClientCount { n, exact: n <= cap };
        if *filter == ClientFilter::default() && scope.is_all() {
            let n = sqlx::query_scalar("SELECT n FROM row_counts WHERE name = 'clients'")
                .fetch_one(&self.pool)
                .await
                .map_err(map_err)?;
            return Ok(ClientCount { n, exact: true });
        }
        if let Some(mut qb) = count_by_tags(scope, filter, cap)
            .or_else(|| count_scoped_email_prefix(scope, filter, cap))
        {
            return qb
                .build_query_scalar()
                .fetch_one(&self.pool)
                .await
                .map_err(map_err)
                .map(capped);
        }
        if let ClientScope::Tags(tags) = scope {
            // The scope probe is one random read per client; a search selects clients in
            // its own index's order, so counting its in-scope matches up to the cap could
            // probe 25 times as many clients (4% in scope). Look at the first cap + 1 the
            // search selects, and count those in scope.
            let mut qb = sqlx::QueryBuilder::<Db>::new("SELECT COUNT(*), COALESCE(SUM(CASE WHEN ");
            push_in_scope(&mut qb, tags);
            qb.push(" THEN 1 ELSE 0 END), 0) FROM (SELECT id, tag_list FROM clients");
            client_filters(&mut qb, &ClientScope::All, filter);
            qb.push(" LIMIT ");
            qb.push_bind(cap + 1);
            qb.push(") AS clients");
            let (candidates, n): (i64, i64) = qb
                .build_query_as()
                .fetch_one(&self.pool)
                .await
                .map_err(map_err)?;
            return Ok(ClientCount {
                n,
                exact: candidates <= cap,
            });
        }
        // Counting stops one row past the cap: a broad filter costs at most that many
        // index entries, never a scan of the whole table.
        let mut qb = sqlx::QueryBuilder::<Db>::new("SELECT COUNT(*) FROM (SELECT 1 FROM clients");
        client_filters(&mut qb, scope, filter);
        qb.push(" LIMIT ");
        qb.push_bind(cap + 1);
        qb.push(") AS matching");
        qb.build_query_scalar()
            .fetch_one(&self.pool)
            .await
            .map_err(map_err)
            .map(capped)
    }

    async fn update_client(
        &self,
        id: i64,
        edit: Edit<'_, ClientRecord, ClientFields>,
    ) -> Result<ClientRecord> {
        let mut tx = self.begin().await?;
        let sql = formatcp!(
            "SELECT {CLIENT_COLS} FROM clients WHERE id = $1{}",
            lock_rows!("clients")
        );
        let row = sqlx::query(sql)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_err)?
            .ok_or(StoreError::NotFound)?;
        let mut found = vec![client_row(&row)?];
        tags_for_clients(&mut *tx, &mut found).await?;
        let before = found.pop().ok_or(StoreError::NotFound)?;
        let (f, event) = match decide(edit, &before)? {
            Decision::Keep => return Ok(before),
            Decision::Write(fields, event) => (fields, event),
        };
        let mut qb = sqlx::QueryBuilder::<Db>::new(
            "UPDATE clients SET version = version + 1, updated_at = ",
        );
        qb.push_bind(event.at.millis());
        let mut set = |column: &str, value: String| {
            qb.push(format!(", {column} = "));
            qb.push_bind(value);
        };
        if f.first_name != before.first_name || f.last_name != before.last_name {
            set(
                "name_key",
                domain::client::name_key(&f.first_name, &f.last_name),
            );
        }
        if f.first_name != before.first_name {
            set("first_name", f.first_name.clone());
        }
        if f.last_name != before.last_name {
            set("last_name", f.last_name.clone());
            set("last_key", f.last_name.to_lowercase());
        }
        if f.email != before.email {
            set("email", f.email.clone());
            set("email_key", f.email_key.clone());
        }
        if f.phone != before.phone {
            set("phone", f.phone.clone());
        }
        if f.country != before.country {
            set("country", f.country.clone());
        }
        if f.city != before.city {
            set("city", f.city.clone());
        }
        if f.role != before.role {
            set("role", f.role.code().to_string());
        }
        if f.status != before.status {
            set("status", f.status.code().to_string());
        }
        if f.language != before.language {
            set("language", f.language.clone());
        }
        qb.push(" WHERE id = ");
        qb.push_bind(id);
        qb.build().execute(&mut *tx).await.map_err(map_err)?;
        if f.tags != before.tag_ids() {
            set_client_tags_in(&mut tx, id, &f.tags).await?;
        }
        let mut after = vec![ClientRecord {
            id,
            first_name: f.first_name,
            last_name: f.last_name,
            email: f.email,
            phone: f.phone,
            country: f.country,
            city: f.city,
            role: f.role,
            status: f.status,
            language: f.language,
            registered_at: before.registered_at,
            updated_at: event.at,
            version: before.version + 1,
            tags: Vec::new(),
        }];
        tags_for_clients(&mut *tx, &mut after).await?;
        append_in(&mut tx, event).await?;
        tx.commit().await.map_err(map_err)?;
        after.pop().ok_or(StoreError::NotFound)
    }

    async fn taken_client_emails(&self, keys: &[String]) -> Result<Vec<String>> {
        let mut taken = Vec::new();
        for chunk in keys.chunks(CLIENT_BATCH) {
            let mut qb =
                sqlx::QueryBuilder::<Db>::new("SELECT email_key FROM clients WHERE email_key IN (");
            let mut sep = qb.separated(", ");
            for k in chunk {
                sep.push_bind(k.as_str());
            }
            qb.push(")");
            let found: Vec<String> = qb
                .build_query_scalar()
                .fetch_all(&self.pool)
                .await
                .map_err(map_err)?;
            taken.extend(found);
        }
        Ok(taken)
    }

    async fn max_client_id(&self) -> Result<i64> {
        let max: Option<i64> = sqlx::query_scalar("SELECT MAX(id) FROM clients")
            .fetch_one(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(max.unwrap_or(0))
    }
}
