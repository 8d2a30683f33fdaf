//! System › Settings: the mail configuration as the operator set it, and a test email.

use crate::mail::Mail;
use crate::{Actor, App, AppError};
use domain::audit::{AuditAction, Category, Event};
use domain::{Action, Email, Section};

/// What the Settings page shows. Never the SMTP password.
pub struct MailSettings {
    pub host: String,
    pub port: u16,
    pub security: &'static str,
    pub sender: String,
    pub authenticated: bool,
}

impl App {
    /// `None` means a standalone install without SMTP.
    pub async fn mail_settings(&self, actor: &Actor) -> Result<Option<MailSettings>, AppError> {
        self.authorize(actor, Section::Settings, Action::View, "view settings")
            .await?;
        Ok(self.mailer.as_ref().map(|m| {
            let c = m.config();
            MailSettings {
                host: c.host.clone(),
                port: c.port,
                security: c.security.label(),
                sender: c.from.clone(),
                authenticated: c.username.is_some(),
            }
        }))
    }

    /// "Send test email" (and `backoffice mail test`): the SMTP server's answer or the failure.
    pub async fn send_test_email(
        &self,
        actor: Option<&Actor>,
        to: &str,
    ) -> Result<String, AppError> {
        if let Some(actor) = actor {
            self.authorize(
                actor,
                Section::Settings,
                Action::Update,
                "send a test email",
            )
            .await?;
        }
        let to = Email::parse(to).map_err(|e| AppError::field("to", e.to_string()))?;
        let mailer = self.mailer.as_ref().ok_or_else(|| {
            AppError::Mail(
                "No SMTP server is configured (standalone install): set BACKOFFICE_SMTP_URL".into(),
            )
        })?;
        let result = mailer
            .send(Mail {
                to_name: String::new(),
                to: to.to_string(),
                subject: "Back Office test email".into(),
                body: "This is a test email from the Back Office. Mail delivery works.\n".into(),
            })
            .await;
        let e = Event::new(
            Category::Settings,
            AuditAction::Send,
            if result.is_ok() {
                "Test email sent"
            } else {
                "Test email failed"
            },
        )
        .change("to", "", to.as_str())
        .change("SMTP answer", "", result.clone().unwrap_or_else(|e| e));
        self.log(actor, None, e).await;
        result.map_err(AppError::Mail)
    }
}
