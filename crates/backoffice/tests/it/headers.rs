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
