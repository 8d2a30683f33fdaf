//! Where an edit form stands: the version of the record it was loaded with (a hidden field,
//! sent back with the form), and, after a save refused because someone changed the record
//! since (409), who did and when, with the values saved meanwhile beside the person's own. The
//! form then carries the current version, so saving it again keeps what the form holds.

use app::Stale;

#[derive(Default)]
pub struct Editing {
    /// `None` on a create form, or when the posted form carried no version.
    pub version: Option<i64>,
    pub conflict: Option<Conflict>,
}

impl Editing {
    pub fn at(version: Option<i64>) -> Self {
        Self {
            version,
            conflict: None,
        }
    }

    /// After a stale save: `fields` are (field, the person's value, the value saved meanwhile).
    pub fn stale(stale: &Stale, fields: Vec<(&'static str, String, String)>) -> Self {
        Self {
            version: Some(stale.version),
            conflict: Some(Conflict {
                message: stale.to_string(),
                theirs: fields
                    .into_iter()
                    .filter(|(_, yours, theirs)| yours != theirs)
                    .map(|(f, _, theirs)| (f, theirs))
                    .collect(),
            }),
        }
    }

    /// The value saved meanwhile in `field`, where it differs from the form's.
    pub fn theirs(&self, field: &str) -> Option<String> {
        let c = self.conflict.as_ref()?;
        c.theirs.iter().find(|(f, _)| *f == field).map(|(_, v)| {
            if v.is_empty() {
                "(empty)".into()
            } else {
                v.clone()
            }
        })
    }
}

pub struct Conflict {
    /// Who changed the record, and when; nothing was saved.
    pub message: String,
    theirs: Vec<(&'static str, String)>,
}
