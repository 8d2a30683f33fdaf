//! The client list: the request as a person typed it, parsed into a store query.

use super::*;

/// What a person can search in. Name, email and phone are personal data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SearchField {
    Id,
    #[default]
    Name,
    Email,
    Phone,
}

impl SearchField {
    pub const ALL: [SearchField; 4] = [
        SearchField::Id,
        SearchField::Name,
        SearchField::Email,
        SearchField::Phone,
    ];

    pub fn code(self) -> &'static str {
        match self {
            SearchField::Id => "id",
            SearchField::Name => "name",
            SearchField::Email => "email",
            SearchField::Phone => "phone",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            SearchField::Id => "Client ID",
            SearchField::Name => "Name",
            SearchField::Email => "Email",
            SearchField::Phone => "Phone",
        }
    }

    pub fn from_code(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.code() == s)
    }

    pub fn is_personal(self) -> bool {
        self != SearchField::Id
    }

    /// The order of results when the request names none: an email-prefix search lists matches
    /// in email order, straight off the email index (in ID order every match would have to be
    /// read and sorted first); everything else in ID order.
    pub fn default_sort(self, text: &str) -> ClientSort {
        match self {
            SearchField::Email if !text.trim().is_empty() => ClientSort::Email,
            _ => ClientSort::Id,
        }
    }
}

/// The list's search, filters and order, as the request carried them (unparsed).
#[derive(Debug, Clone, Default)]
pub struct ClientListRequest {
    pub field: SearchField,
    pub text: String,
    pub country: String,
    pub role: String,
    pub status: String,
    /// `YYYY-MM-DD`, inclusive.
    pub from: String,
    /// `YYYY-MM-DD`, inclusive.
    pub to: String,
    /// Clients carrying any of these tags (ids).
    pub tags: Vec<i64>,
    pub sort: ClientSort,
    pub descending: bool,
    /// Keyset cursor for the ID order: the page after this client (Next).
    pub after_id: Option<i64>,
    /// Keyset cursor for the ID order: the page before this client (Previous).
    pub before_id: Option<i64>,
    /// The last page of the ID order: the keyset read from the other end.
    pub last: bool,
    /// 1-based page for the other orders.
    pub page: i64,
    pub per_page: i64,
}

/// One page of the list, masked for masked viewers.
#[derive(Debug, Clone, Default)]
pub struct ClientList {
    pub items: Vec<ClientView>,
    /// The number of matching clients; with a filter or a scope, counting stops after about
    /// [`COUNT_CAP`] (see `store::ClientStore::count_clients`).
    pub total: i64,
    /// At least `total` clients match (counting stopped early).
    pub total_is_lower_bound: bool,
    /// Another page follows this one.
    pub has_more: bool,
    /// The id to continue after (ID order), when there are more rows.
    pub next_after: Option<i64>,
    /// The id whose preceding page is the previous one (ID order), when this isn't the first.
    pub prev_before: Option<i64>,
}

fn role_filter(raw: &str) -> Result<Option<ClientRole>, String> {
    if raw.trim().is_empty() {
        return Ok(None);
    }
    ClientRole::from_code(raw)
        .map(Some)
        .ok_or_else(|| "Choose a role from the list".into())
}

fn status_filter(raw: &str) -> Result<Option<ClientStatus>, String> {
    if raw.trim().is_empty() {
        return Ok(None);
    }
    ClientStatus::from_code(raw)
        .map(Some)
        .ok_or_else(|| "Choose Active or Blocked".into())
}

fn day(raw: &str) -> Result<Option<Timestamp>, String> {
    if raw.trim().is_empty() {
        return Ok(None);
    }
    Timestamp::from_date(raw)
        .map(Some)
        .ok_or_else(|| "Enter a date as YYYY-MM-DD".into())
}

/// The normalised search, or a message for the search box.
fn search(field: SearchField, text: &str) -> Result<Option<ClientSearch>, String> {
    let t = text.trim();
    if t.is_empty() {
        return Ok(None);
    }
    Ok(Some(match field {
        SearchField::Id => ClientSearch::Id(
            t.parse::<i64>()
                .ok()
                .filter(|id| *id > 0)
                .ok_or("Enter a client ID: a whole number")?,
        ),
        SearchField::Name => ClientSearch::Name(
            t.split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .to_lowercase(),
        ),
        SearchField::Email => ClientSearch::Email(t.to_lowercase()),
        SearchField::Phone => {
            let rest = t
                .strip_prefix('+')
                .or_else(|| t.strip_prefix("00"))
                .unwrap_or(t);
            if !rest
                .chars()
                .all(|c| c.is_ascii_digit() || " -.()".contains(c))
            {
                return Err("Search a phone number by its first digits, like +44 20".into());
            }
            let digits: String = rest.chars().filter(char::is_ascii_digit).collect();
            if digits.is_empty() {
                return Err("Search a phone number by its first digits, like +44 20".into());
            }
            ClientSearch::Phone(format!("+{digits}"))
        }
    }))
}

const MASKED_SEARCH: &str =
    "With Mask data on you can't search, filter or sort clients by name, email or phone. \
     Find a client by ID, country, role, status or registration date instead.";

impl App {
    /// Parses the list request into a store filter, refusing masked viewers' personal searches.
    pub(crate) async fn client_filter(
        &self,
        actor: &Actor,
        req: &ClientListRequest,
    ) -> Result<ClientFilter, AppError> {
        let personal_search = !req.text.trim().is_empty() && req.field.is_personal();
        let personal_sort = matches!(req.sort, ClientSort::Name | ClientSort::Email);
        if actor.masked() && (personal_search || personal_sort) {
            let what = if personal_search {
                format!("search clients by {}", req.field.label().to_lowercase())
            } else {
                format!("sort clients by {}", req.sort.code())
            };
            self.refused(actor, &what, MASKED_SEARCH).await;
            return Err(AppError::Forbidden(MASKED_SEARCH.into()));
        }
        fn take<T>(
            errors: &mut FieldErrors,
            field: &'static str,
            r: Result<Option<T>, String>,
        ) -> Option<T> {
            r.map_err(|m| errors.insert(field, m)).ok().flatten()
        }
        let mut errors = FieldErrors::new();
        let country = if req.country.trim().is_empty() {
            Ok(None)
        } else {
            client::parse_country(&req.country).map(Some)
        };
        let tags = match self.existing_tags(&req.tags).await? {
            Ok(tags) => tags.iter().map(|t| t.id).collect(),
            Err(m) => {
                errors.insert("tags", m);
                Vec::new()
            }
        };
        let filter = ClientFilter {
            tags,
            search: take(&mut errors, "q", search(req.field, &req.text)),
            country: take(&mut errors, "country", country),
            role: take(&mut errors, "role", role_filter(&req.role)),
            status: take(&mut errors, "status", status_filter(&req.status)),
            registered_from: take(&mut errors, "from", day(&req.from)),
            registered_before: take(&mut errors, "to", day(&req.to)).map(|t| t.plus_secs(86_400)),
        };
        if let (Some(from), Some(before)) = (filter.registered_from, filter.registered_before) {
            if from >= before {
                errors.insert(
                    "to",
                    "Registered to must be the same day as Registered from or later".into(),
                );
            }
        }
        if !errors.is_empty() {
            return Err(AppError::Invalid(errors));
        }
        Ok(filter)
    }

    /// Clients › list: one page, the total, and the cursor of the next page.
    pub async fn list_clients(
        &self,
        actor: &Actor,
        req: &ClientListRequest,
    ) -> Result<ClientList, AppError> {
        self.authorize(actor, Section::Clients, Action::View, "list clients")
            .await?;
        let filter = self.client_filter(actor, req).await?;
        let per_page = if PAGE_SIZES.contains(&req.per_page) {
            req.per_page
        } else {
            PAGE_SIZES[0]
        };
        // In ID order Previous and Last read the keyset the other way (the page before a
        // client, or the first page from the far end) and turn it round: no OFFSET either way.
        let keyset = req.sort == ClientSort::Id;
        let backwards = keyset && (req.last || req.before_id.is_some());
        let query = ClientQuery {
            filter,
            sort: req.sort,
            descending: req.descending != backwards,
            after_id: match (backwards, req.last) {
                (true, true) => None,
                (true, false) => req.before_id,
                (false, _) => req.after_id,
            },
            offset: if keyset {
                0
            } else {
                (req.page.clamp(1, 1_000_000) - 1) * per_page
            },
            limit: per_page + 1,
        };
        let scope = actor.client_scope();
        let mut items = self.store.list_clients(scope, &query).await?;
        let beyond = items.len() as i64 > per_page;
        items.truncate(per_page as usize);
        if backwards {
            if !beyond && !req.last {
                // Less than a page before the cursor: that is the first page, shown whole.
                let first = ClientListRequest {
                    before_id: None,
                    after_id: None,
                    ..req.clone()
                };
                return Box::pin(self.list_clients(actor, &first)).await;
            }
            items.reverse();
        }
        let (more, earlier) = if backwards {
            (!req.last, beyond)
        } else {
            (beyond, req.after_id.is_some())
        };
        let next_after = items.last().filter(|_| keyset && more).map(|c| c.id);
        let prev_before = items.first().filter(|_| keyset && earlier).map(|c| c.id);
        let first_page = query.offset == 0 && req.after_id.is_none() && !backwards;
        let counted = if first_page && !more {
            // The whole result is on this page: its length is the count.
            store::ClientCount {
                n: items.len() as i64,
                exact: true,
            }
        } else {
            let mut counted = self
                .store
                .count_clients(scope, &query.filter, COUNT_CAP)
                .await?;
            if !counted.exact {
                // A scoped search counts the in-scope clients among the first ones the search
                // selects: never say fewer than the pages up to this one already show.
                let shown = query.offset + items.len() as i64 + i64::from(more);
                counted.n = counted.n.max(shown);
            }
            counted
        };
        Ok(ClientList {
            items: items
                .into_iter()
                .map(|c| ClientView::for_actor(actor, c))
                .collect(),
            total: counted.n,
            total_is_lower_bound: !counted.exact,
            has_more: more,
            next_after,
            prev_before,
        })
    }
}
