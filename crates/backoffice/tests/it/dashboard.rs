//! The Dashboard: the figures a viewer may see, counted right, each linking to the list it
//! counts; the sign-in chart; the latest changes, masked and scoped like the Event log.

use domain::client::ClientInput;
use testkit::db::backends;
use testkit::pages::*;
use testkit::TestApp;

fn client(i: usize, country: &str, status: &str) -> ClientInput {
    ClientInput {
        first_name: "Dana".into(),
        last_name: format!("Figure{i}"),
        email: format!("dana.figure{i}@example.com"),
        phone: format!("+4420794601{:02}", i % 100),
        country: country.into(),
        city: "Anytown".into(),
        role: "investor".into(),
        status: status.into(),
        language: "en".into(),
    }
}

/// The number in the table row whose header links to `href`.
fn figure(page: &str, href: &str) -> i64 {
    let at = page
        .find(&format!("<a href=\"{href}\">"))
        .unwrap_or_else(|| panic!("no link to {href}"));
    let cell = &page[at..];
    let td = cell.find("<td>").unwrap() + 4;
    cell[td..].split('<').next().unwrap().parse().unwrap()
}

#[tokio::test]
async fn the_dashboard_counts_what_the_viewer_may_see_and_links_each_figure() {
    for backend in backends() {
        let t = TestApp::start(backend).await;
        let admin = t.admin().await;
        let actor = t.actor_of(&admin).await;
        let eu = t.app.create_tag(&actor, "EU desk").await.unwrap();
        for (i, (country, status, tags)) in [
            ("GB", "active", vec![eu]),
            ("GB", "active", vec![]),
            ("DE", "blocked", vec![eu]),
            ("FR", "active", vec![]),
        ]
        .into_iter()
        .enumerate()
        {
            let id = t
                .app
                .create_client(&actor, &client(i, country, status), &tags)
                .await
                .unwrap();
            assert!(id > 0);
        }
        // A failed sign-in, and an account locked by five of them.
        t.browser()
            .sign_in(&t.admin_email, "not the password")
            .await;
        let scoped = t
            .staff("scoped@example.com")
            .by(&admin)
            .with_rights(&["clients.view"])
            .with_allowed_tags(&[eu])
            .masked(true)
            .signed_in()
            .await;
        let locked = t
            .staff("locked@example.com")
            .by(&admin)
            .with_rights(&["users.view"])
            .signed_in()
            .await;
        drop(locked);
        for _ in 0..5 {
            t.browser()
                .sign_in("locked@example.com", "wrong password")
                .await;
        }

        let page = admin.get("/").await;
        assert_eq!(page.status, 200, "{backend}");
        let p = page.body;
        // Staff: the administrator and the two staff members, by status and method.
        assert_eq!(figure(&p, "/users?status=enabled"), 3, "{backend}");
        assert_eq!(figure(&p, "/users?status=disabled"), 0);
        assert_eq!(figure(&p, "/users?locked=yes"), 1, "{backend}");
        let without = figure(&p, "/users?two_factor=disabled");
        assert_eq!(
            without + figure(&p, "/users?two_factor=email"),
            3,
            "{backend}"
        );
        // Clients by status and country.
        assert_eq!(figure(&p, "/clients?status=active"), 3, "{backend}");
        assert_eq!(figure(&p, "/clients?status=blocked"), 1);
        assert_eq!(figure(&p, "/clients?country=GB"), 2);
        assert_eq!(figure(&p, "/clients?country=FR"), 1);
        // Sign-ins today, on the chart and in its table, each linking to those events.
        let today = &t.app.now().iso()[..10];
        let signed_in = format!("/events?event=Signed+in&#38;from={today}&#38;to={today}");
        let failed = format!("/events?event=Sign-in+failed&#38;from={today}&#38;to={today}");
        assert!(
            p.contains("<svg") && p.contains(&signed_in),
            "{backend}: {p}"
        );
        let cell = |href: &str| -> i64 {
            let at = p.rfind(&format!("<a href=\"{href}\">")).unwrap();
            p[at..]
                .split('>')
                .nth(1)
                .unwrap()
                .split('<')
                .next()
                .unwrap()
                .parse()
                .unwrap()
        };
        let ok_events = events_with(&t, "Signed in").await as i64;
        assert_eq!(cell(&signed_in), ok_events, "{backend}");
        assert_eq!(
            cell(&failed),
            6,
            "{backend}: one failed sign-in and five to lock"
        );
        // The latest changes: the newest first (the lockout), linked to its target.
        let latest = p
            .split("<ul class=\"latest\">")
            .nth(1)
            .expect("latest changes");
        let first = latest.split("</li>").next().unwrap();
        assert!(
            first.contains("Account locked: <a href=\"/users/"),
            "{backend}: {first}"
        );
        // The list a figure links to shows that many.
        let locked_list = admin.get("/users?locked=yes").await.body;
        assert!(
            locked_list.contains("<td>locked@example.com</td>"),
            "{backend}"
        );
        assert!(
            !locked_list.contains("<td>scoped@example.com</td>"),
            "{locked_list}"
        );

        // A masked, scoped viewer with Clients › View only: their clients, nothing else.
        let p = scoped.get("/").await.body;
        assert_eq!(
            figure(&p, "/clients?status=active"),
            1,
            "{backend}: in scope"
        );
        assert_eq!(figure(&p, "/clients?status=blocked"), 1);
        assert!(
            !p.contains("/clients?country=FR"),
            "{backend}: FR is outside the scope"
        );
        assert!(!p.contains("/users?status=enabled") && !p.contains("<svg"));
        assert!(
            !p.contains("Latest changes") && !p.contains("Figure"),
            "{backend}"
        );
    }
}
