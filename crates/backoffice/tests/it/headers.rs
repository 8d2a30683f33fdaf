//! Security headers that every response carries, whatever the page or its outcome.

use testkit::{db::backends, Options, TestApp};

const PATHS: [&str; 5] = [
    "/login",
    "/",
    "/healthz",
    "/static/app.css",
    "/no/such/page",
];

#[tokio::test]
async fn https_deployments_tell_browsers_to_use_nothing_else_for_a_year() {
    for backend in backends() {
        let https = TestApp::start_with_options(
            backend,
            Options {
                https: true,
                ..Default::default()
            },
        )
        .await;
        let b = https.browser();
        for path in PATHS {
            let r = b.get(path).await;
            assert_eq!(
                r.headers
                    .get("strict-transport-security")
                    .map(|v| v.to_str().unwrap()),
                Some("max-age=31536000; includeSubDomains"),
                "{path} answered {}",
                r.status
            );
        }
        let api = b.client.get(https.url("/api/v1/me")).send().await.unwrap();
        assert_eq!(api.status(), 401);
        assert!(api.headers().contains_key("strict-transport-security"));

        // Over plain http the header means nothing and would only be noise.
        let http = TestApp::start(backend).await;
        let b = http.browser();
        for path in PATHS {
            let r = b.get(path).await;
            assert!(
                !r.headers.contains_key("strict-transport-security"),
                "{path}"
            );
        }
    }
}

/// Pages name their script and styles by a versioned URL (a hash of the content): a browser
/// keeps those a year, and a new deploy's pages name new URLs instead of meeting an old cached
/// `app.js`. The plain URL still answers, kept only briefly.
#[tokio::test]
async fn static_assets_have_versioned_urls_cached_for_a_year() {
    let t = TestApp::start("sqlite").await;
    let b = t.browser();
    let login = b.get("/login").await;
    let docs = b.get("/api/docs").await;
    for (page, path) in [
        (&login, "/static/app.css"),
        (&login, "/static/app.js"),
        (&docs, "/api/docs/swagger-ui-bundle.js"),
        (&docs, "/api/docs/dark.css"),
    ] {
        let at = page
            .body
            .find(&format!("{path}?v="))
            .unwrap_or_else(|| panic!("{path} without a version in {}", page.body));
        let versioned: String = page.body[at..].chars().take_while(|c| *c != '"').collect();
        let v = versioned.split("?v=").nth(1).unwrap();
        let r = b.get(&versioned).await;
        assert_eq!(r.status, 200, "{versioned}");
        let cache = |r: &testkit::Page| {
            r.headers
                .get("cache-control")
                .map(|v| v.to_str().unwrap().to_string())
        };
        assert_eq!(
            cache(&r).as_deref(),
            Some("public, max-age=31536000, immutable"),
            "{versioned}"
        );
        use sha2::Digest;
        let hash = hex::encode(&sha2::Sha256::digest(r.body.as_bytes())[..8]);
        assert_eq!(v, hash, "{path}: the version is the content's hash");
        let plain = b.get(path).await;
        assert_eq!(plain.status, 200);
        assert_eq!(
            cache(&plain).as_deref(),
            Some("public, max-age=300"),
            "{path}"
        );
        // An old page's version gets today's file, not kept long under that name.
        let stale = b.get(&format!("{path}?v=0000000000000000")).await;
        assert_eq!(cache(&stale).as_deref(), Some("public, max-age=300"));
    }
    // Pages themselves are never cached.
    assert_eq!(
        login
            .headers
            .get("cache-control")
            .unwrap()
            .to_str()
            .unwrap(),
        "no-store"
    );
}
