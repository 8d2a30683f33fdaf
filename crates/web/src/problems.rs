//! The error summary at the top of a form that came back with problems: each problem once, as a
//! link to the control it is about, in the form's own order.

use app::FieldErrors;

pub struct Problem {
    /// The id of the control to go to.
    pub id: String,
    pub message: String,
}

/// The problems in `errors`, in the order of `fields` (`(field name, control id)`); a field
/// that `fields` doesn't list comes last and links to the control with its own name.
pub fn problems(errors: &FieldErrors, fields: &[(&str, &str)]) -> Vec<Problem> {
    let mut out: Vec<Problem> = fields
        .iter()
        .filter_map(|(field, id)| {
            errors.get(field).map(|m| Problem {
                id: (*id).to_string(),
                message: m.clone(),
            })
        })
        .collect();
    for (field, message) in errors {
        if !fields.iter().any(|(f, _)| f == field) {
            out.push(Problem {
                id: (*field).to_string(),
                message: message.clone(),
            });
        }
    }
    out
}
