//! The command line. Exit codes: 0 success, 1 refused or failed, 2 bad configuration.

use crate::config::{Config, ConfigError};
use app::mail::Mailer;
use app::{App, AppError};
use clap::{Parser, Subcommand, ValueEnum};
use domain::TwoFactor;
use std::io::Read;
use std::process::ExitCode;
use std::sync::Arc;

/// The Back Office of a copy-trading platform: staff accounts, groups and permissions, with an
/// event log. Runs on embedded SQLite by default, or on PostgreSQL.
///
/// Configuration comes from defaults, then an optional ./backoffice.toml, then BACKOFFICE_*
/// environment variables (BACKOFFICE_DATABASE_URL, BACKOFFICE_LISTEN, BACKOFFICE_SMTP_URL,
/// BACKOFFICE_MAIL_FROM, BACKOFFICE_PUBLIC_URL …; see docs/OPERATIONS.md).
#[derive(Parser, Debug)]
#[command(name = "backoffice", version, about, long_about)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Start the web server (the default when no command is given). Applies migrations and,
    /// when the database has no users, creates the first administrator and prints its
    /// one-time sign-in details once.
    Serve,
    /// Apply database migrations and list the ones applied now.
    Migrate,
    /// Manage administrators.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Mail: check the SMTP configuration.
    Mail {
        #[command(subcommand)]
        command: MailCommand,
    },
    /// Event log: check the hash chain.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Copy the SQLite database to a new file while the server may run (SQLite's online backup:
    /// a consistent copy as of one moment; writers are not held up). The copy is checked with
    /// SQLite's quick_check before it gets its name. For PostgreSQL use pg_dump (see
    /// docs/OPERATIONS.md).
    Backup {
        /// The file to write; it must not exist yet.
        #[arg(long, value_name = "FILE")]
        to: std::path::PathBuf,
    },
    /// Demo data.
    Demo {
        #[command(subcommand)]
        command: DemoCommand,
    },
}

#[derive(Subcommand, Debug)]
enum DemoCommand {
    /// Add realistic fake clients and/or event-log rows. Deterministic: the same database and
    /// N give the same data. Shows progress on the terminal and prints the time taken.
    Seed {
        /// How many staff accounts to add (staff-<n>@demo.example, spread over 20 "Demo team"
        /// groups, every third with Mask data, every fifth with one demo tag as Allowed Client
        /// Tags, 2FA off). They share one password.
        #[arg(long, default_value_t = 0)]
        staff: usize,
        /// Read the demo staff password from standard input instead of generating one (which
        /// is printed).
        #[arg(long)]
        staff_password_stdin: bool,
        /// How many clients to add, each carrying one to three of 50 demo tags ("Desk 01" …).
        #[arg(long, default_value_t = 0)]
        clients: usize,
        /// How many event-log rows to add (a year of plausible activity, chained).
        #[arg(long, default_value_t = 0)]
        events: usize,
    },
}

#[derive(Subcommand, Debug)]
enum AdminCommand {
    /// Create a member of the built-in Administrators group. The account must choose a new
    /// password at first sign-in.
    Create {
        /// Email address to sign in with (unique, case-insensitive).
        #[arg(long)]
        email: String,
        /// First and last names.
        #[arg(long)]
        name: String,
        /// Read the password from standard input instead of generating one (which is printed).
        #[arg(long)]
        password_stdin: bool,
        /// Two-factor authentication: email codes (default when SMTP is configured) or disabled
        /// (default on a standalone install, where codes can't be sent).
        #[arg(long, value_enum)]
        two_factor: Option<TwoFactorArg>,
    },
}

#[derive(Subcommand, Debug)]
enum MailCommand {
    /// Send a test email and print the SMTP server's answer or the exact failure.
    Test {
        /// Recipient address.
        #[arg(long)]
        to: String,
    },
}

#[derive(Subcommand, Debug)]
enum AuditCommand {
    /// Walk the event-log hash chain: prints the row count and OK, or the first row whose
    /// content or link does not match (exit code 1).
    Verify {
        /// Check this database instead of the configured one, changing nothing in it: a SQLite
        /// file (e.g. a backup, opened read-only) or a postgres:// URL (e.g. a restored dump).
        #[arg(long, value_name = "FILE")]
        database: Option<String>,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum TwoFactorArg {
    Email,
    Disabled,
}

pub fn config_failure(e: &ConfigError) -> ExitCode {
    eprintln!("error: configuration: {e}");
    ExitCode::from(2)
}

fn failure(e: &AppError) -> ExitCode {
    match e {
        AppError::Invalid(fields) => {
            for (field, message) in fields {
                eprintln!("error: {field}: {message}");
            }
        }
        other => eprintln!("error: {other}"),
    }
    ExitCode::from(1)
}

/// Opens the database (with migrations) and builds the application.
pub async fn open(config: &Config) -> Result<Arc<App>, ExitCode> {
    open_with(config, store::Workload::Serve, false).await
}

pub async fn open_for(config: &Config, workload: store::Workload) -> Result<Arc<App>, ExitCode> {
    open_with(config, workload, false).await
}

/// `serve`: the app with the key that seals two-factor secrets (`BACKOFFICE_SECRET_KEY_FILE`).
/// A missing or wrong key stops start-up (exit 2): it couldn't open what is stored.
pub async fn open_serving(config: &Config) -> Result<Arc<App>, ExitCode> {
    open_with(config, store::Workload::Serve, true).await
}

async fn open_with(
    config: &Config,
    workload: store::Workload,
    with_key: bool,
) -> Result<Arc<App>, ExitCode> {
    config.prepare_database().map_err(|e| config_failure(&e))?;
    let mut settings = config.settings().map_err(|e| config_failure(&e))?;
    // A key named by the setting (or required, with PostgreSQL) is read before anything
    // else; only the embedded default's may be made, once the database says it has none.
    let named_key = if with_key && (config.secret_key_file.is_some() || !config.is_sqlite()) {
        Some(config.secret_key(false).map_err(|e| config_failure(&e))?)
    } else {
        None
    };
    let smtp = config.smtp().map_err(|e| config_failure(&e))?;
    let max_connections = config
        .database_max_connections()
        .map_err(|e| config_failure(&e))?;
    let store = store::connect_with(&config.database_url, workload, max_connections)
        .await
        .map_err(|e| {
            config_failure(&ConfigError {
                setting: "BACKOFFICE_DATABASE_URL",
                reason: format!("can't open the database: {e}"),
            })
        })?;
    let applied = store.migrate().await.map_err(|e| {
        eprintln!("error: migrations failed: {e}");
        ExitCode::from(1)
    })?;
    for m in &applied {
        tracing::info!(migration = %m, "migration applied");
    }
    let mailer = match smtp {
        Some(c) => Some(Mailer::new(c).map_err(|e| {
            config_failure(&ConfigError {
                setting: "BACKOFFICE_SMTP_URL",
                reason: e,
            })
        })?),
        None => None,
    };
    let key_recorded = if with_key {
        store
            .setting(app::secret_box::KEY_CHECK_SETTING)
            .await
            .map_err(|e| failure(&AppError::from(e)))?
            .is_some()
    } else {
        false
    };
    if let Some(key) = named_key {
        settings.secret_key = key;
    } else if with_key {
        settings.secret_key = config
            .secret_key(!key_recorded)
            .map_err(|e| config_failure(&e))?;
    }
    let app = Arc::new(App::new(store, mailer, settings));
    if with_key {
        app.check_secret_key().await.map_err(|reason| {
            config_failure(&ConfigError {
                setting: "BACKOFFICE_SECRET_KEY_FILE",
                reason,
            })
        })?;
    }
    app.seed().await.map_err(|e| failure(&e))?;
    Ok(app)
}

pub async fn run(cli: Cli, config: Config) -> ExitCode {
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => crate::serve::run(config).await,
        Command::Migrate => migrate(&config).await,
        Command::Admin {
            command:
                AdminCommand::Create {
                    email,
                    name,
                    password_stdin,
                    two_factor,
                },
        } => admin_create(&config, &email, &name, password_stdin, two_factor).await,
        Command::Mail {
            command: MailCommand::Test { to },
        } => mail_test(&config, &to).await,
        Command::Audit {
            command: AuditCommand::Verify { database },
        } => match database {
            Some(copy) => audit_verify_copy(&copy).await,
            None => audit_verify(&config).await,
        },
        Command::Backup { to } => backup(&config, &to).await,
        Command::Demo {
            command:
                DemoCommand::Seed {
                    staff,
                    staff_password_stdin,
                    clients,
                    events,
                },
        } => {
            let seed = Seed {
                staff,
                staff_password_stdin,
                clients,
                events,
            };
            demo_seed(&config, seed).await
        }
    };
    result.unwrap_or_else(|code| code)
}

async fn migrate(config: &Config) -> Result<ExitCode, ExitCode> {
    config.prepare_database().map_err(|e| config_failure(&e))?;
    let store = store::connect(&config.database_url).await.map_err(|e| {
        config_failure(&ConfigError {
            setting: "BACKOFFICE_DATABASE_URL",
            reason: format!("can't open the database: {e}"),
        })
    })?;
    let applied = store.migrate().await.map_err(|e| {
        eprintln!("error: migrations failed: {e}");
        ExitCode::from(1)
    })?;
    if applied.is_empty() {
        println!(
            "The database ({}) is up to date; no migration applied.",
            store.backend()
        );
    } else {
        println!(
            "Applied {} migration(s) to the {} database:",
            applied.len(),
            store.backend()
        );
        for m in applied {
            println!("  {m}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A password piped to standard input, without its line ending.
fn password_from_stdin() -> Result<String, ExitCode> {
    let mut s = String::new();
    std::io::stdin().read_to_string(&mut s).map_err(|e| {
        eprintln!("error: can't read the password from standard input: {e}");
        ExitCode::from(1)
    })?;
    Ok(s.trim_end_matches(['\r', '\n']).to_string())
}

async fn admin_create(
    config: &Config,
    email: &str,
    name: &str,
    password_stdin: bool,
    two_factor: Option<TwoFactorArg>,
) -> Result<ExitCode, ExitCode> {
    let password = if password_stdin {
        Some(password_from_stdin()?)
    } else {
        None
    };
    let app = open(config).await?;
    let tf = two_factor.map(|t| match t {
        TwoFactorArg::Email => TwoFactor::Email,
        TwoFactorArg::Disabled => TwoFactor::Disabled,
    });
    let admin = app
        .create_admin(email, name, password.as_deref(), tf)
        .await
        .map_err(|e| failure(&e))?;
    println!("Administrator {} created (id {}).", admin.email, admin.id);
    if let Some(p) = admin.generated_password {
        println!("One-time password: {p}");
        println!("It must be changed at first sign-in. It is shown only now.");
    }
    print_two_factor_note(&app, admin.two_factor);
    Ok(ExitCode::SUCCESS)
}

pub fn print_two_factor_note(app: &App, tf: TwoFactor) {
    match (tf, app.has_smtp()) {
        (TwoFactor::Disabled, false) => println!(
            "Warning: two-factor authentication is disabled for this account because no SMTP server is \
             configured (standalone install), so sign-in codes can't be emailed. After signing in, set up \
             an authenticator app (TOTP) or a passkey: profile menu › Enable 2FA."
        ),
        (TwoFactor::Email, false) => println!(
            "Warning: this account uses email codes but no SMTP server is configured: it can't sign in \
             until BACKOFFICE_SMTP_URL is set or 2FA is disabled for it."
        ),
        (TwoFactor::Email, true) => println!("Two-factor authentication: sign-in codes are sent by email."),
        (TwoFactor::Disabled, true) => println!("Two-factor authentication: disabled (as requested)."),
        (TwoFactor::Totp | TwoFactor::Passkey, _) => println!(
            "Two-factor authentication: {} (set up by the account's owner).",
            tf.label()
        ),
    }
}

async fn mail_test(config: &Config, to: &str) -> Result<ExitCode, ExitCode> {
    let app = open(config).await?;
    match app.send_test_email(None, to).await {
        Ok(answer) => {
            println!("Sent. The SMTP server answered: {answer}");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Err(failure(&e)),
    }
}

async fn audit_verify(config: &Config) -> Result<ExitCode, ExitCode> {
    let app = open(config).await?;
    let report = app.verify_audit_chain().await.map_err(|e| failure(&e))?;
    chain_verdict(report)
}

/// `audit verify --database`: a copy (a backup file or a restored database), opened to read
/// only; no migration runs and nothing is created.
async fn audit_verify_copy(database: &str) -> Result<ExitCode, ExitCode> {
    let url = if database.starts_with("sqlite:")
        || database.starts_with("postgres://")
        || database.starts_with("postgresql://")
    {
        database.to_string()
    } else {
        if !std::path::Path::new(database).is_file() {
            eprintln!("error: {database}: no such database file");
            return Err(ExitCode::from(1));
        }
        format!("sqlite://{database}")
    };
    let store = store::open_copy(&url).await.map_err(|e| {
        eprintln!(
            "error: can't open {}: {e}",
            crate::config::redact_url(database)
        );
        ExitCode::from(1)
    })?;
    let report = app::audit::verify_chain_of(store.as_ref())
        .await
        .map_err(|e| {
            eprintln!(
                "error: {}: not a Back Office database, or unreadable: {e}",
                crate::config::redact_url(database)
            );
            ExitCode::from(1)
        })?;
    chain_verdict(report)
}

/// `backup --to FILE`: SQLite's online backup of the configured database.
async fn backup(config: &Config, to: &std::path::Path) -> Result<ExitCode, ExitCode> {
    let Some(source) = config.sqlite_path() else {
        eprintln!(
            "error: backup copies a SQLite database file; for PostgreSQL use pg_dump \
             (see docs/OPERATIONS.md, \"Backups\")"
        );
        return Err(ExitCode::from(1));
    };
    let (from, dest) = (source.clone(), to.to_path_buf());
    let started = std::time::Instant::now();
    let copied = tokio::task::spawn_blocking(move || store::backup_sqlite(&from, &dest))
        .await
        .map_err(|e| {
            eprintln!("error: the backup failed: {e}");
            ExitCode::from(1)
        })?;
    match copied {
        Ok(report) => {
            println!(
                "Backed up {} to {} ({} pages, {:.1} MiB) in {:.1} s; SQLite's quick_check: ok.",
                source.display(),
                to.display(),
                report.pages,
                report.bytes as f64 / (1024.0 * 1024.0),
                started.elapsed().as_secs_f64()
            );
            let key = config.secret_key_file.clone().map_or_else(
                || source.with_file_name("secret.key"),
                std::path::PathBuf::from,
            );
            println!(
                "Check its event log with: backoffice audit verify --database {}",
                to.display()
            );
            println!(
                "The copy holds no key: keep {} too (apart from the copy), or two-factor secrets \
                 in it can't be opened.",
                key.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("error: backup failed: {e}");
            Err(ExitCode::from(1))
        }
    }
}

fn chain_verdict(report: store::ChainReport) -> Result<ExitCode, ExitCode> {
    match report {
        store::ChainReport::Ok { rows } => {
            println!("{rows} event(s) checked: OK");
            Ok(ExitCode::SUCCESS)
        }
        store::ChainReport::Broken { id, reason } => {
            println!("Event log chain broken at row {id}: {reason}");
            Ok(ExitCode::from(1))
        }
    }
}

/// What `demo seed` adds.
struct Seed {
    staff: usize,
    staff_password_stdin: bool,
    clients: usize,
    events: usize,
}

async fn demo_seed(config: &Config, seed: Seed) -> Result<ExitCode, ExitCode> {
    let Seed {
        staff,
        staff_password_stdin,
        clients,
        events,
    } = seed;
    let staff_password = match (staff, staff_password_stdin) {
        (0, _) => None,
        (_, true) => Some((password_from_stdin()?, false)),
        (_, false) => Some((domain::password::generate(), true)),
    };
    if let Some((password, _)) = &staff_password {
        if let Err(e) = domain::password::check(password, "staff") {
            eprintln!("error: demo staff password: {e}");
            return Err(ExitCode::from(1));
        }
    }
    let app = open_for(config, store::Workload::BulkLoad).await?;
    if let Some((password, generated)) = staff_password {
        let started = std::time::Instant::now();
        let progress = |done: usize| eprint!("\rSeeding staff: {done} / {staff}");
        let added = app
            .seed_demo_staff(staff, &password, &progress)
            .await
            .map_err(|e| {
                eprintln!();
                failure(&e)
            })?;
        eprintln!();
        println!(
            "Added {added} demo staff account(s) in {:.1} s.",
            started.elapsed().as_secs_f64()
        );
        if generated {
            println!("Their password (shown once): {password}");
        }
    }
    if events > 0 {
        let started = std::time::Instant::now();
        let progress = |done: usize| eprint!("\rSeeding events: {done} / {events}");
        let added = app.seed_demo_events(events, &progress).await.map_err(|e| {
            eprintln!();
            failure(&e)
        })?;
        eprintln!();
        println!(
            "Added {added} demo event(s) in {:.1} s.",
            started.elapsed().as_secs_f64()
        );
    }
    if clients > 0 {
        seed_clients(&app, clients).await?;
    }
    // Fresh planner statistics, so the first queries after a bulk load use the indexes.
    app.refresh_statistics().await.map_err(|e| failure(&e))?;
    Ok(ExitCode::SUCCESS)
}

async fn seed_clients(app: &App, clients: usize) -> Result<(), ExitCode> {
    let started = std::time::Instant::now();
    let progress = |done: usize| {
        let percent = (done * 100).checked_div(clients).unwrap_or(100);
        eprint!("\rSeeding clients: {done} / {clients} ({percent}%)");
    };
    let added = app
        .seed_demo_clients(clients, &progress)
        .await
        .map_err(|e| {
            eprintln!();
            failure(&e)
        })?;
    if added > 0 {
        eprintln!();
    }
    println!(
        "Added {added} demo client(s) in {:.1} s.",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
