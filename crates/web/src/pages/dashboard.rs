//! The landing page after sign-in.

use crate::layout::Layout;
use crate::pages::render;
use crate::session::Staff;
use askama::Template;
use axum::response::Response;

#[derive(Template)]
#[template(path = "dashboard.html")]
struct Dashboard {
    l: Layout,
    name: String,
}

pub async fn show(staff: Staff) -> Response {
    render(&Dashboard {
        name: staff.actor.name().to_string(),
        l: staff.layout,
    })
}
