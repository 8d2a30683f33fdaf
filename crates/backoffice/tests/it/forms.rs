//! Error summaries (issue 24, finding 5) on the forms that had only messages at their fields: a
//! form that comes back lists each problem once as a link to its field, the field says it is
//! invalid and names its message, and a typed password is never sent back.

use testkit::pages::*;
use testkit::{db::backends, Page, TestApp};

/// The error summary's links, as `#id message`.
fn summary(page: &Page) -> Vec<String> {
    let Some(at) = page.body.find("id=\"error-summary\"") else {
        return Vec::new();
    };
    let block = &page.body[at..page.body[at..]
        .find("</div>")
        .map_or(page.body.len(), |e| at + e)];
    block
        .split("<a href=\"")
        .skip(1)
        .map(|s| {
            let (href, rest) = s.split_once("\">").unwrap();
            format!("{href} {}", rest.split('<').next().unwrap())
        })
        .collect()
}

/// The field with this id is marked invalid and described by its message, which exists.
fn marked(page: &Page, id: &str) {
    let at = page
        .body
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no field {id}"));
    let tag = &page.body[at..at + page.body[at..].find('>').unwrap()];
    assert!(tag.contains("aria-invalid=\"true\""), "{id}: {tag}");
    let described = tag
        .split("aria-describedby=\"")
        .nth(1)
        .unwrap_or_else(|| panic!("{id} names no message: {tag}"))
        .split('"')
        .next()
        .unwrap();
    for d in described.split_whitespace() {
        assert!(
            page.body.contains(&format!("id=\"{d}\"")),
            "{id} is described by {d}, which exists"
        );
    }
}

/// Each problem shows twice at most: once in the summary, once at its field (no extra alert).
fn said_once_each(page: &Page, message: &str) {
    assert_eq!(
        page.body.matches(message).count(),
        2,
        "{message:?} in the summary and at the field only"
    );
}

#[tokio::test]
async fn forms_that_come_back_have_an_error_summary_and_never_echo_a_password() {
    for backend in backends() {
        let t = TestApp::start(backend).await;
        let admin = t.admin().await;

        // Profile › Change password.
        admin.get("/profile").await;
        let r = admin
            .post(
                "/profile/password",
                &[
                    ("current_password", "Typed-Wrong-Password-1"),
                    ("new_password", "Typed-New-Password-22"),
                    ("confirm_password", "Typed-New-Password-23"),
                ],
            )
            .await;
        assert_eq!(r.status, 422, "{backend}");
        let links = summary(&r);
        assert!(!links.is_empty(), "{backend}: a summary");
        assert!(
            links.iter().all(|l| l.starts_with('#')),
            "each problem a link to its field: {links:?}"
        );
        for l in &links {
            marked(&r, l[1..].split(' ').next().unwrap());
        }
        assert!(
            !r.body.contains("Typed-"),
            "{backend}: no typed password echoed"
        );

        // System › Settings › Send test email to an address that isn't one.
        admin.get("/settings").await;
        let r = admin
            .post("/settings/test-email", &[("to", "not-an-address")])
            .await;
        assert_eq!(r.status, 422, "{backend}");
        let links = summary(&r);
        assert_eq!(links.len(), 1, "{links:?}");
        assert!(links[0].starts_with("#to "), "{links:?}");
        marked(&r, "to");
        said_once_each(&r, &links[0][4..]);

        // Two-factor: the authenticator app's Verify with a wrong code and password.
        admin.get("/two-factor/totp").await;
        let r = admin
            .post(
                "/two-factor/totp",
                &[("code", "000000"), ("password", "Typed-Wrong-Password-1")],
            )
            .await;
        assert_eq!(r.status, 422, "{backend}");
        let links = summary(&r);
        assert!(
            links
                .iter()
                .any(|l| l.starts_with("#code ") || l.starts_with("#password ")),
            "{links:?}"
        );
        for l in &links {
            marked(&r, l[1..].split(' ').next().unwrap());
        }
        assert!(!r.body.contains("Typed-Wrong"), "{backend}");

        // Two-factor: change the method to email codes with a wrong password.
        admin.get("/two-factor/email").await;
        let r = admin
            .post(
                "/two-factor/email",
                &[("password", "Typed-Wrong-Password-1")],
            )
            .await;
        assert_eq!(r.status, 422, "{backend}");
        let links = summary(&r);
        assert!(
            links.iter().any(|l| l.starts_with("#password ")),
            "{links:?}"
        );
        marked(&r, "password");
        assert!(!r.body.contains("Typed-Wrong"), "{backend}");

        // Two-factor: Regenerate recovery codes (its own password field) needs an enrolled app:
        // its summary is checked in two_factor::recovery_codes_work_once_and_regenerating_voids_the_old_ones.

        // The first sign-in's forced password change.
        let desk = create_group(&admin, "Desk", &["users.view"]).await;
        create_user(
            &admin,
            "pat@example.com",
            "Pat Person",
            &[&desk.to_string()],
            false,
            false,
        )
        .await;
        // New users get email codes: the code step comes first.
        let b = t.browser();
        let r = b.sign_in("pat@example.com", USER_PASSWORD).await;
        assert_eq!(r.location.as_deref(), Some("/login/code"), "{backend}");
        b.enter_code(&t.smtp().latest_code("pat@example.com")).await;
        b.get("/password/change").await;
        let r = b
            .post(
                "/password/change",
                &[
                    ("new_password", "Typed-New-Password-22"),
                    ("confirm_password", "Typed-New-Password-23"),
                ],
            )
            .await;
        assert_eq!(r.status, 422, "{backend}");
        let links = summary(&r);
        assert!(
            links.iter().any(|l| l.starts_with("#confirm_password ")),
            "{links:?}"
        );
        marked(&r, "confirm_password");
        assert!(!r.body.contains("Typed-New"), "{backend}");
        assert!(
            !r.body.contains("autofocus required") && !r.body.contains("required autofocus"),
            "the summary takes the focus, not the field"
        );

        // The sign-in's code step and its recovery code.
        let b = t.browser();
        let r = b.sign_in("pat@example.com", USER_PASSWORD).await;
        assert_eq!(r.location.as_deref(), Some("/login/code"), "{backend}");
        b.get("/login/code").await;
        let r = b.post("/login/code", &[("code", "000000")]).await;
        assert_eq!(r.status, 422, "{backend}: {}", r.body);
        assert_eq!(summary(&r)[0].split(' ').next(), Some("#code"));
        marked(&r, "code");
        b.get("/login/recovery").await;
        let r = b
            .post("/login/recovery", &[("recovery_code", "aaaa-bbbb")])
            .await;
        assert_eq!(r.status, 422, "{backend}: {}", r.body);
        assert_eq!(summary(&r)[0].split(' ').next(), Some("#recovery_code"));
        marked(&r, "recovery_code");
    }
}
