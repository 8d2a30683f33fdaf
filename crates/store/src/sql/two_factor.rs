//! Second factors: authenticator-app secrets, recovery codes, passkeys, WebAuthn ceremonies in
//! progress, and the run-time settings (see `two_factor.rs` for the port).

use super::events::append_in;
use super::{lock_rows, BackendStore, DbRow, Tx, DIALECT};
use crate::*;
use async_trait::async_trait;
use const_format::formatcp;
use domain::{Timestamp, TwoFactor};
use sqlx::Row;

/// The user's method, locked until the commit: a passkey is added only to a passkey account.
const USER_METHOD: &str = formatcp!(
    "SELECT two_factor FROM users WHERE id = $1{}",
    lock_rows!("users")
);
/// The user's passkeys, locked until the commit: the last one is never removed.
const PASSKEY_IDS: &str = formatcp!(
    "SELECT id FROM passkeys WHERE user_id = $1{}",
    lock_rows!("passkeys")
);

fn passkey_row(r: &DbRow) -> Result<PasskeyRecord> {
    let g = |e: sqlx::Error| map_err(e);
    Ok(PasskeyRecord {
        id: r.try_get("id").map_err(g)?,
        user_id: r.try_get("user_id").map_err(g)?,
        name: r.try_get("name").map_err(g)?,
        credential: r.try_get("credential").map_err(g)?,
        created_at: Timestamp(r.try_get("created_at").map_err(g)?),
        last_used_at: r
            .try_get::<Option<i64>, _>("last_used_at")
            .map_err(g)?
            .map(Timestamp),
    })
}

async fn exec_in(tx: &mut Tx, sql: &str, user_id: i64) -> Result<()> {
    sqlx::query(sql)
        .bind(user_id)
        .execute(&mut **tx)
        .await
        .map_err(map_err)?;
    Ok(())
}

async fn insert_passkey_in(
    tx: &mut Tx,
    user_id: i64,
    p: &NewPasskey,
    at: Timestamp,
) -> Result<i64> {
    let row = sqlx::query(
        "INSERT INTO passkeys (user_id, name, credential_key, credential, created_at) \
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(user_id)
    .bind(&p.name)
    .bind(&p.credential_key)
    .bind(&p.credential)
    .bind(at.millis())
    .fetch_one(&mut **tx)
    .await
    .map_err(map_err)?;
    row.try_get(0).map_err(map_err)
}

async fn insert_recovery_in(tx: &mut Tx, user_id: i64, hashes: &[String]) -> Result<()> {
    exec_in(tx, "DELETE FROM recovery_codes WHERE user_id = $1", user_id).await?;
    for h in hashes {
        sqlx::query("INSERT INTO recovery_codes (user_id, code_hash) VALUES ($1, $2)")
            .bind(user_id)
            .bind(h)
            .execute(&mut **tx)
            .await
            .map_err(map_err)?;
    }
    Ok(())
}

#[async_trait]
impl TwoFactorStore for BackendStore {
    async fn put_totp_enrolment(&self, user_id: i64, sealed: &str, at: Timestamp) -> Result<()> {
        sqlx::query(
            "INSERT INTO totp_enrolments (user_id, secret, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (user_id) DO UPDATE SET secret = excluded.secret, created_at = excluded.created_at",
        )
        .bind(user_id)
        .bind(sealed)
        .bind(at.millis())
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn totp_enrolment(&self, user_id: i64) -> Result<Option<String>> {
        sqlx::query_scalar("SELECT secret FROM totp_enrolments WHERE user_id = $1")
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)
    }

    async fn totp_secret(&self, user_id: i64) -> Result<Option<TotpSecret>> {
        let row = sqlx::query("SELECT secret, last_step FROM totp_secrets WHERE user_id = $1")
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        row.map(|r| {
            Ok(TotpSecret {
                sealed: r.try_get(0).map_err(map_err)?,
                last_step: r.try_get(1).map_err(map_err)?,
            })
        })
        .transpose()
    }

    async fn spend_totp_step(&self, user_id: i64, step: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE totp_secrets SET last_step = $2 WHERE user_id = $1 AND last_step < $2",
        )
        .bind(user_id)
        .bind(step)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn set_two_factor_method(
        &self,
        user_id: i64,
        c: MethodChange,
        event: AuditEntry,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        let updated = sqlx::query(
            "UPDATE users SET two_factor = $2, updated_at = $3, version = version + 1 \
             WHERE id = $1 AND ($4 = '' OR two_factor = $4)",
        )
        .bind(user_id)
        .bind(c.method.code())
        .bind(c.at.millis())
        .bind(c.expect.map(|t| t.code()).unwrap_or(""))
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        if updated.rows_affected() != 1 {
            return Err(StoreError::Conflict(
                "Two-factor authentication of this account was changed meanwhile; try again".into(),
            ));
        }
        if let Some(enrolment) = &c.confirms_enrolment {
            let confirmed =
                sqlx::query("DELETE FROM totp_enrolments WHERE user_id = $1 AND secret = $2")
                    .bind(user_id)
                    .bind(enrolment)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
            if confirmed.rows_affected() != 1 {
                return Err(StoreError::Conflict(
                    "This set-up was confirmed already or replaced by a newer one; open it again"
                        .into(),
                ));
            }
        }
        exec_in(
            &mut tx,
            "DELETE FROM totp_enrolments WHERE user_id = $1",
            user_id,
        )
        .await?;
        exec_in(
            &mut tx,
            "DELETE FROM totp_secrets WHERE user_id = $1",
            user_id,
        )
        .await?;
        if let Some((sealed, step)) = &c.totp {
            sqlx::query("INSERT INTO totp_secrets (user_id, secret, last_step, created_at) VALUES ($1, $2, $3, $4)")
                .bind(user_id)
                .bind(sealed)
                .bind(step)
                .bind(c.at.millis())
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        }
        exec_in(&mut tx, "DELETE FROM passkeys WHERE user_id = $1", user_id).await?;
        if let Some(p) = &c.passkey {
            insert_passkey_in(&mut tx, user_id, p, c.at).await?;
        }
        insert_recovery_in(&mut tx, user_id, &c.recovery_hashes).await?;
        append_in(&mut tx, event).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn recovery_codes_left(&self, user_id: i64) -> Result<i64> {
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL",
        )
        .bind(user_id)
        .fetch_one(&self.pool)
        .await
        .map_err(map_err)
    }

    async fn spend_recovery_code(
        &self,
        user_id: i64,
        code_hash: &str,
        at: Timestamp,
        event: AuditEntry,
    ) -> Result<bool> {
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            "UPDATE recovery_codes SET used_at = $3 WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL",
        )
        .bind(user_id)
        .bind(code_hash)
        .bind(at.millis())
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        append_in(&mut tx, event).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(true)
    }

    async fn replace_recovery_codes(
        &self,
        user_id: i64,
        hashes: &[String],
        event: AuditEntry,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        insert_recovery_in(&mut tx, user_id, hashes).await?;
        append_in(&mut tx, event).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn passkeys_of_user(&self, user_id: i64) -> Result<Vec<PasskeyRecord>> {
        let rows = sqlx::query(
            "SELECT id, user_id, name, credential, created_at, last_used_at FROM passkeys \
             WHERE user_id = $1 ORDER BY id",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.iter().map(passkey_row).collect()
    }

    async fn add_passkey(
        &self,
        user_id: i64,
        p: &NewPasskey,
        at: Timestamp,
        event: AuditEntry,
    ) -> Result<i64> {
        let mut tx = self.begin().await?;
        let method: Option<String> = sqlx::query_scalar(USER_METHOD)
            .bind(user_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_err)?;
        if method.as_deref() != Some(TwoFactor::Passkey.code()) {
            return Err(StoreError::Conflict(
                "Passkeys are not this account's method".into(),
            ));
        }
        let id = insert_passkey_in(&mut tx, user_id, p, at).await?;
        append_in(&mut tx, event).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(id)
    }

    async fn remove_passkey(&self, user_id: i64, id: i64, event: AuditEntry) -> Result<()> {
        let mut tx = self.begin().await?;
        let ids: Vec<i64> = sqlx::query_scalar(PASSKEY_IDS)
            .bind(user_id)
            .fetch_all(&mut *tx)
            .await
            .map_err(map_err)?;
        if !ids.contains(&id) {
            return Err(StoreError::NotFound);
        }
        if ids.len() == 1 {
            return Err(StoreError::Conflict(
                "This is your only passkey: add another one first, or change the method".into(),
            ));
        }
        sqlx::query("DELETE FROM passkeys WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        append_in(&mut tx, event).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn passkey_used(&self, id: i64, credential: &str, at: Timestamp) -> Result<()> {
        sqlx::query("UPDATE passkeys SET credential = $2, last_used_at = $3 WHERE id = $1")
            .bind(id)
            .bind(credential)
            .bind(at.millis())
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn put_ceremony(
        &self,
        session_hash: &str,
        purpose: &str,
        state: &str,
        expires_at: Timestamp,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO webauthn_ceremonies (session_hash, purpose, state, expires_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (session_hash) DO UPDATE SET purpose = excluded.purpose, state = excluded.state, \
             expires_at = excluded.expires_at",
        )
        .bind(session_hash)
        .bind(purpose)
        .bind(state)
        .bind(expires_at.millis())
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn purge_two_factor_leftovers(
        &self,
        now: Timestamp,
        enrolments_before: Timestamp,
    ) -> Result<u64> {
        let ceremonies = sqlx::query("DELETE FROM webauthn_ceremonies WHERE expires_at <= $1")
            .bind(now.millis())
            .execute(&self.pool)
            .await
            .map_err(map_err)?
            .rows_affected();
        let enrolments = sqlx::query("DELETE FROM totp_enrolments WHERE created_at < $1")
            .bind(enrolments_before.millis())
            .execute(&self.pool)
            .await
            .map_err(map_err)?
            .rows_affected();
        Ok(ceremonies + enrolments)
    }

    async fn take_ceremony(
        &self,
        session_hash: &str,
        purpose: &str,
        now: Timestamp,
    ) -> Result<Option<String>> {
        let row = sqlx::query(
            "DELETE FROM webauthn_ceremonies WHERE session_hash = $1 RETURNING purpose, state, expires_at",
        )
        .bind(session_hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        let Some(r) = row else { return Ok(None) };
        let p: String = r.try_get(0).map_err(map_err)?;
        let expires: i64 = r.try_get(2).map_err(map_err)?;
        if p != purpose || expires <= now.millis() {
            return Ok(None);
        }
        r.try_get(1).map(Some).map_err(map_err)
    }

    async fn setting(&self, name: &str) -> Result<Option<String>> {
        sqlx::query_scalar("SELECT value FROM system_settings WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)
    }

    async fn put_setting(&self, name: &str, value: &str, event: Option<AuditEntry>) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO system_settings (name, value) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        )
        .bind(name)
        .bind(value)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        if let Some(e) = event {
            append_in(&mut tx, e).await?;
        }
        tx.commit().await.map_err(map_err)
    }

    async fn setting_or_insert(&self, name: &str, value: &str) -> Result<String> {
        sqlx::query("INSERT INTO system_settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
            .bind(name)
            .bind(value)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        sqlx::query_scalar("SELECT value FROM system_settings WHERE name = $1")
            .bind(name)
            .fetch_one(&self.pool)
            .await
            .map_err(map_err)
    }
}
