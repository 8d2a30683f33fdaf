//! `demo seed --clients N`: realistic fake clients for demos and benchmarks. The generator is a
//! seeded ChaCha RNG, so the same database state and N always give the same clients; rows go in
//! with multi-row INSERTs inside large transactions, so a million take seconds, not minutes.

use crate::{App, AppError};
use domain::audit::{AuditAction, Category, Event};
use domain::client::{ClientRole, ClientStatus};
use domain::{Action, Permission, PermissionSet, Section, Timestamp, TwoFactor, UserStatus};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use store::{ClientFields, NewClient, NewUser, StoreError};

/// Clients per transaction.
const BATCH: usize = 50_000;
/// Registration dates fall in the five years before 2026-01-01.
const EPOCH_END: i64 = 1_767_225_600_000;
const FIVE_YEARS_MS: i64 = 5 * 365 * 86_400_000;

/// (country, calling code, national digits, language, cities, first names, last names)
type Country = (
    &'static str,
    &'static str,
    usize,
    &'static str,
    &'static [&'static str],
    &'static [&'static str],
    &'static [&'static str],
);

#[rustfmt::skip]
const COUNTRIES: &[Country] = &[
    ("GB", "44", 10, "en", &["London", "Manchester", "Leeds", "Bristol", "Glasgow"],
     &["Oliver", "Amelia", "Harry", "Isla", "George", "Ava", "Jack", "Emily"],
     &["Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Evans", "Clarke"]),
    ("DE", "49", 10, "de", &["Berlin", "Hamburg", "München", "Köln", "Frankfurt am Main"],
     &["Lukas", "Sophie", "Jonas", "Marie", "Felix", "Hannah", "Jürgen", "Lea"],
     &["Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker"]),
    ("FR", "33", 9, "fr", &["Paris", "Lyon", "Marseille", "Toulouse", "Nantes"],
     &["Léa", "Hugo", "Chloé", "Louis", "Manon", "Gabriel", "Inès", "Raphaël"],
     &["Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand"]),
    ("ES", "34", 9, "es", &["Madrid", "Barcelona", "Valencia", "Sevilla", "Málaga"],
     &["Lucía", "Hugo", "Martina", "Mateo", "Sofía", "Pablo", "Alba", "José"],
     &["García", "Fernández", "González", "Rodríguez", "López", "Martínez", "Sánchez", "Pérez"]),
    ("IT", "39", 10, "it", &["Roma", "Milano", "Napoli", "Torino", "Bologna"],
     &["Giulia", "Leonardo", "Sofia", "Francesco", "Aurora", "Alessandro", "Chiara", "Marco"],
     &["Rossi", "Russo", "Ferrari", "Esposito", "Bianchi", "Romano", "Colombo", "Ricci"]),
    ("PL", "48", 9, "pl", &["Warszawa", "Kraków", "Łódź", "Wrocław", "Gdańsk"],
     &["Zuzanna", "Jakub", "Julia", "Łukasz", "Maja", "Antoni", "Zofia", "Paweł"],
     &["Nowak", "Kowalski", "Wiśniewski", "Wójcik", "Kamiński", "Lewandowski", "Zieliński", "Żak"]),
    ("US", "1", 10, "en", &["New York", "Chicago", "Austin", "Seattle", "Miami"],
     &["Liam", "Olivia", "Noah", "Emma", "James", "Charlotte", "Ethan", "Mia"],
     &["Johnson", "Miller", "Davis", "Garcia", "Rodriguez", "Martinez", "Anderson", "Moore"]),
    ("BR", "55", 11, "pt", &["São Paulo", "Rio de Janeiro", "Brasília", "Salvador", "Curitiba"],
     &["Miguel", "Helena", "Arthur", "Alice", "Heitor", "Laura", "Davi", "Valentina"],
     &["Silva", "Santos", "Oliveira", "Souza", "Lima", "Pereira", "Costa", "Carvalho"]),
    ("TR", "90", 10, "tr", &["İstanbul", "Ankara", "İzmir", "Bursa", "Antalya"],
     &["Yusuf", "Zeynep", "Eymen", "Elif", "Ömer", "Defne", "Mustafa", "Ayşe"],
     &["Yılmaz", "Kaya", "Demir", "Şahin", "Çelik", "Yıldız", "Öztürk", "Aydın"]),
    ("AE", "971", 9, "ar", &["Dubai", "Abu Dhabi", "Sharjah"],
     &["Mohammed", "Fatima", "Ahmed", "Mariam", "Omar", "Aisha", "Khalid", "Noora"],
     &["Al Mansoori", "Al Hashimi", "Al Nuaimi", "Al Falasi", "Haddad", "Khoury", "Saleh", "Nasser"]),
    ("IN", "91", 10, "hi", &["Mumbai", "Delhi", "Bengaluru", "Hyderabad", "Pune"],
     &["Aarav", "Ananya", "Vihaan", "Diya", "Arjun", "Saanvi", "Rohan", "Isha"],
     &["Sharma", "Patel", "Singh", "Kumar", "Gupta", "Reddy", "Iyer", "Nair"]),
    ("JP", "81", 10, "ja", &["Tokyo", "Osaka", "Yokohama", "Nagoya", "Sapporo"],
     &["Haruto", "Yui", "Sota", "Hina", "Yuto", "Aoi", "Riku", "Sakura"],
     &["Sato", "Suzuki", "Takahashi", "Tanaka", "Watanabe", "Ito", "Yamamoto", "Nakamura"]),
    ("CY", "357", 8, "el", &["Limassol", "Nicosia", "Larnaca", "Paphos"],
     &["Andreas", "Maria", "Georgios", "Eleni", "Christos", "Anna", "Nikos", "Sofia"],
     &["Georgiou", "Christou", "Ioannou", "Charalambous", "Constantinou", "Nicolaou", "Savva", "Demetriou"]),
    ("NG", "234", 10, "en", &["Lagos", "Abuja", "Ibadan", "Port Harcourt"],
     &["Chinedu", "Ngozi", "Emeka", "Aisha", "Tunde", "Funmilayo", "Ibrahim", "Chioma"],
     &["Okafor", "Adeyemi", "Bello", "Eze", "Ogunleye", "Musa", "Nwosu", "Balogun"]),
];

const DOMAINS: &[&str] = &[
    "gmail.com",
    "outlook.com",
    "yahoo.com",
    "proton.me",
    "icloud.com",
    "gmx.de",
    "mail.ru",
    "example.com",
    "example.org",
    "hotmail.co.uk",
];

/// ASCII for an email's local part: `Jürgen Müller` → `jurgen.muller`.
fn ascii_slug(s: &str) -> String {
    s.chars()
        .filter_map(|c| {
            let base = match c {
                'à'..='å' | 'ą' => 'a',
                'ç' | 'ć' | 'č' => 'c',
                'è'..='ë' | 'ę' => 'e',
                'ì'..='ï' | 'ı' | 'İ' => 'i',
                'ñ' | 'ń' => 'n',
                'ò'..='ö' => 'o',
                'ù'..='ü' => 'u',
                'ś' | 'ş' | 'Ş' => 's',
                'ź' | 'ż' | 'Ż' => 'z',
                'ł' | 'Ł' => 'l',
                'ğ' => 'g',
                'Ç' => 'c',
                'Ö' => 'o',
                ' ' => '-',
                c if c.is_ascii_alphanumeric() => c.to_ascii_lowercase(),
                _ => return None,
            };
            Some(base)
        })
        .collect()
}

/// Demo clients carry one to three of this many tags ("Desk 01" …).
pub const DEMO_TAGS: usize = 50;

/// The `n`-th demo client of a run whose RNG is `rng`. `n` makes the email unique; it carries
/// one to three of `tags`.
fn fake_client(rng: &mut ChaCha8Rng, n: i64, tags: &[i64]) -> NewClient {
    let (country, code, national, language, cities, firsts, lasts) =
        COUNTRIES[rng.gen_range(0..COUNTRIES.len())];
    let first = firsts[rng.gen_range(0..firsts.len())];
    let last = lasts[rng.gen_range(0..lasts.len())];
    let domain = DOMAINS[rng.gen_range(0..DOMAINS.len())];
    let email = format!("{}.{}.{n}@{domain}", ascii_slug(first), ascii_slug(last));
    let mut phone = String::with_capacity(16);
    phone.push('+');
    phone.push_str(code);
    phone.push(char::from(b'1' + rng.gen_range(0..9u8)));
    for _ in 1..national {
        phone.push(char::from(b'0' + rng.gen_range(0..10u8)));
    }
    let role = match rng.gen_range(0..10) {
        0..=6 => ClientRole::Investor,
        7 | 8 => ClientRole::StrategyProvider,
        _ => ClientRole::Both,
    };
    let status = if rng.gen_range(0..20) == 0 {
        ClientStatus::Blocked
    } else {
        ClientStatus::Active
    };
    let mut client_tags = Vec::new();
    if !tags.is_empty() {
        for _ in 0..rng.gen_range(1..=3) {
            client_tags.push(tags[rng.gen_range(0..tags.len())]);
        }
        client_tags.sort_unstable();
        client_tags.dedup();
    }
    NewClient {
        fields: ClientFields {
            first_name: first.into(),
            last_name: last.into(),
            email_key: email.to_lowercase(),
            email,
            phone,
            country: country.into(),
            city: cities[rng.gen_range(0..cities.len())].into(),
            role,
            status,
            language: language.into(),
            tags: client_tags,
        },
        registered_at: Timestamp(EPOCH_END - rng.gen_range(0..FIVE_YEARS_MS)),
    }
}

/// Demo staff are spread over this many groups.
pub const DEMO_GROUPS: usize = 20;

/// What demo group `k` may do: every group views clients and the event log; the rest varies so
/// the groups differ the way real teams do.
fn demo_group_rights(k: usize) -> PermissionSet {
    let mut set = PermissionSet::default();
    set.insert(Permission::new(Section::Clients, Action::View));
    set.insert(Permission::new(Section::EventLog, Action::View));
    let extra = [
        Permission::new(Section::Clients, Action::Update),
        Permission::new(Section::Clients, Action::Export),
        Permission::new(Section::Users, Action::View),
        Permission::new(Section::Groups, Action::View),
        Permission::new(Section::Clients, Action::Create),
    ];
    for (bit, p) in extra.into_iter().enumerate() {
        if k & (1 << bit) != 0 {
            set.insert(p);
        }
    }
    set
}

impl App {
    /// The demo tags' ids, creating the missing ones.
    async fn demo_tags(&self) -> Result<Vec<i64>, AppError> {
        let mut ids = Vec::with_capacity(DEMO_TAGS);
        for k in 0..DEMO_TAGS {
            let caption = format!("Desk {:02}", k + 1);
            let key = domain::tag::caption_key(&caption);
            if let Some(t) = self.store.tags_by_keys(&[key]).await?.pop() {
                ids.push(t.id);
                continue;
            }
            let event = Event::new(Category::Clients, AuditAction::Add, "Tag created")
                .change("caption", "", &caption);
            ids.push(
                self.store
                    .insert_tag(&caption, self.entry(None, None, event))
                    .await?,
            );
        }
        Ok(ids)
    }

    /// `demo seed --staff N`: N enabled staff accounts `staff-<n>@demo.example` in
    /// [`DEMO_GROUPS`] groups, every third one with Mask data, every fifth one with one demo tag
    /// as Allowed Client Tags (`staff-5` sees the clients of "Desk 06"), 2FA off and no forced password
    /// change (so benchmarks can sign them in). They all get `password`, hashed once: demo data,
    /// never for production. Numbering continues after the existing users.
    pub async fn seed_demo_staff(
        &self,
        count: usize,
        password: &str,
        progress: &(dyn Fn(usize) + Sync),
    ) -> Result<usize, AppError> {
        let mut group_ids = Vec::with_capacity(DEMO_GROUPS);
        for k in 0..DEMO_GROUPS {
            let caption = format!("Demo team {:02}", k + 1);
            let event = Event::new(Category::Groups, AuditAction::Add, "Group created")
                .change("caption", "", &caption);
            let entry = self.entry(None, None, event);
            match self
                .store
                .insert_group(&caption, &demo_group_rights(k), &[], entry)
                .await
            {
                Ok(id) => group_ids.push(id),
                Err(StoreError::Duplicate { .. }) => {
                    let groups = self.store.list_groups().await?;
                    let found = groups.iter().find(|g| g.caption == caption);
                    group_ids.push(found.map(|g| g.id).ok_or(AppError::NotFound)?);
                }
                Err(e) => return Err(e.into()),
            }
        }
        let hash = self.hasher.hash(password).await;
        let tags = self.demo_tags().await?;
        let base = self.store.count_users().await? as usize;
        for i in 0..count {
            let n = base + i + 1;
            let email = format!("staff-{n}@demo.example");
            let user = NewUser {
                email_key: email.clone(),
                email: email.clone(),
                name: format!("Demo Staff {n}"),
                password_hash: hash.clone(),
                status: UserStatus::Enabled,
                two_factor: TwoFactor::Disabled,
                mask_data: n.is_multiple_of(3),
                ip_whitelist: Default::default(),
                must_change_password: false,
                created_by: None,
                group_ids: vec![group_ids[n % DEMO_GROUPS]],
                allowed_tag_ids: if n.is_multiple_of(5) {
                    vec![tags[n % DEMO_TAGS]]
                } else {
                    Vec::new()
                },
                created_at: self.now(),
            };
            let event = Event::new(Category::Users, AuditAction::Add, "User created")
                .target("user", 0, &email);
            self.store
                .insert_user(user, None, self.entry(None, None, event))
                .await?;
            if (i + 1).is_multiple_of(500) || i + 1 == count {
                progress(i + 1);
            }
        }
        Ok(count)
    }

    /// Refreshes the database's planner statistics after a bulk load.
    pub async fn refresh_statistics(&self) -> Result<(), AppError> {
        Ok(self.store.analyze().await?)
    }

    /// Adds `count` demo clients; `progress` is called with the number written so far.
    /// Numbering continues after the highest existing id, so seeding twice never collides.
    pub async fn seed_demo_clients(
        &self,
        count: usize,
        progress: &(dyn Fn(usize) + Sync),
    ) -> Result<usize, AppError> {
        let base = self.store.max_client_id().await?;
        let tags = self.demo_tags().await?;
        let mut rng = ChaCha8Rng::seed_from_u64(0x5EED_C11E ^ base as u64);
        let mut done = 0;
        while done < count {
            let n = BATCH.min(count - done);
            let batch: Vec<NewClient> = (0..n)
                .map(|i| fake_client(&mut rng, base + (done + i) as i64 + 1, &tags))
                .collect();
            self.store.insert_clients(&batch, None).await?;
            done += n;
            progress(done);
        }
        let e = Event::new(Category::Clients, AuditAction::Add, "Demo clients seeded").change(
            "count",
            "",
            count.to_string(),
        );
        self.log(None, None, e).await;
        Ok(done)
    }

    /// `demo seed --events N`: a plausible year of event-log rows (sign-ins, user, group and
    /// client changes by the existing staff), chained like real ones, in large transactions.
    pub async fn seed_demo_events(
        &self,
        count: usize,
        progress: &(dyn Fn(usize) + Sync),
    ) -> Result<usize, AppError> {
        const KINDS: [(Category, AuditAction, &str, &str); 6] = [
            (Category::Auth, AuditAction::SignIn, "Signed in", "user"),
            (
                Category::Auth,
                AuditAction::SignIn,
                "Sign-in failed",
                "user",
            ),
            (Category::Users, AuditAction::Update, "User updated", "user"),
            (
                Category::Groups,
                AuditAction::Update,
                "Group permissions changed",
                "group",
            ),
            (
                Category::Clients,
                AuditAction::Update,
                "Client updated",
                "client",
            ),
            (
                Category::Clients,
                AuditAction::Export,
                "Clients exported",
                "client",
            ),
        ];
        let staff = self.store.count_users().await?.max(1);
        let mut rng = ChaCha8Rng::seed_from_u64(0x5EED_E7E1);
        let start = self.now().millis() - 365 * 86_400_000;
        let step = (365 * 86_400_000 / count.max(1) as i64).max(1);
        let mut done = 0;
        while done < count {
            let n = 10_000.min(count - done);
            let batch = (0..n)
                .map(|i| {
                    let (category, action, name, target) = KINDS[rng.gen_range(0..KINDS.len())];
                    let actor = rng.gen_range(1..=staff);
                    let target_id = rng.gen_range(1..=1000);
                    store::AuditEntry {
                        at: Timestamp(start + (done + i) as i64 * step),
                        actor_id: Some(actor),
                        actor_email: Some(format!("staff{actor}@example.com")),
                        actor_groups: "Support".into(),
                        ip: Some(format!(
                            "10.0.{}.{}",
                            rng.gen_range(0..255),
                            rng.gen_range(1..255)
                        )),
                        event: Event::new(category, action, name)
                            .target(target, target_id, format!("{target} {target_id}"))
                            .change("city", "Leeds", "York"),
                        idempotency: None,
                    }
                })
                .collect();
            self.store.append_events(batch).await?;
            done += n;
            progress(done);
        }
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fake_clients_are_valid_and_deterministic() {
        let mut a = ChaCha8Rng::seed_from_u64(7);
        let mut b = ChaCha8Rng::seed_from_u64(7);
        for n in 1..500 {
            let c = fake_client(&mut a, n, &[1, 2, 3]);
            assert_eq!(c.fields, fake_client(&mut b, n, &[1, 2, 3]).fields);
            assert!((1..=3).contains(&c.fields.tags.len()));
            let f = &c.fields;
            let input = domain::client::ClientInput {
                first_name: f.first_name.clone(),
                last_name: f.last_name.clone(),
                email: f.email.clone(),
                phone: f.phone.clone(),
                country: f.country.clone(),
                city: f.city.clone(),
                role: f.role.code().into(),
                status: f.status.code().into(),
                language: f.language.clone(),
            };
            let v = domain::client::validate(&input).unwrap_or_else(|e| panic!("{f:?}: {e:?}"));
            assert_eq!(ClientFields::new(&v, c.fields.tags.clone()), c.fields);
        }
    }
}
