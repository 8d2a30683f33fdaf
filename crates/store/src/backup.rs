//! A consistent copy of a SQLite database while the server runs, with SQLite's online backup
//! API: the copy is made in one step, inside one read transaction of the source, so it is the
//! database as of one moment. In WAL mode a reader blocks no writer, so the server keeps
//! writing meanwhile. The copy is written next to its destination under a temporary name,
//! checked (`PRAGMA quick_check`), flushed to disk and only then renamed into place: a failed
//! backup leaves no file that looks like one.

use libsqlite3_sys as ffi;
use std::ffi::{CStr, CString};
use std::path::{Path, PathBuf};
use std::ptr;

/// What a finished backup copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupReport {
    pub pages: i64,
    pub bytes: u64,
}

/// Copies the SQLite database at `source` to `dest`, which must not exist yet. Blocking: call it
/// from a thread that may block.
pub fn backup_sqlite(source: &Path, dest: &Path) -> Result<BackupReport, String> {
    if !source.is_file() {
        return Err(format!("{} is not a database file", source.display()));
    }
    if dest.exists() {
        return Err(format!(
            "{} already exists; name a new file (a backup never overwrites one)",
            dest.display()
        ));
    }
    let partial = partial_name(dest);
    let _ = std::fs::remove_file(&partial);
    let result = copy(source, &partial).and_then(|pages| {
        let file = std::fs::File::open(&partial).map_err(|e| e.to_string())?;
        file.sync_all().map_err(|e| e.to_string())?;
        let bytes = file.metadata().map_err(|e| e.to_string())?.len();
        // Not over a file that appeared meanwhile.
        if dest.exists() {
            return Err(format!("{} appeared during the backup", dest.display()));
        }
        std::fs::rename(&partial, dest).map_err(|e| e.to_string())?;
        if let Some(dir) = dest.parent().filter(|d| !d.as_os_str().is_empty()) {
            if let Ok(d) = std::fs::File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(BackupReport { pages, bytes })
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    result
}

fn partial_name(dest: &Path) -> PathBuf {
    let mut name = dest.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    dest.with_file_name(name)
}

/// An open SQLite handle, closed when dropped.
struct Db(*mut ffi::sqlite3);

impl Db {
    fn open(path: &Path, flags: i32) -> Result<Db, String> {
        let c_path = CString::new(path.as_os_str().as_encoded_bytes())
            .map_err(|_| format!("{}: a path with a NUL byte", path.display()))?;
        let mut handle = ptr::null_mut();
        // SAFETY: a valid C string and an out-pointer; the handle is closed by Drop, also when
        // opening failed (SQLite may return a handle with the error).
        let rc = unsafe { ffi::sqlite3_open_v2(c_path.as_ptr(), &mut handle, flags, ptr::null()) };
        let db = Db(handle);
        if rc != ffi::SQLITE_OK {
            return Err(format!("can't open {}: {}", path.display(), db.error()));
        }
        Ok(db)
    }

    fn error(&self) -> String {
        if self.0.is_null() {
            return "out of memory".into();
        }
        // SAFETY: the handle is open; SQLite owns the message until the next call on it.
        unsafe { CStr::from_ptr(ffi::sqlite3_errmsg(self.0)) }
            .to_string_lossy()
            .into_owned()
    }

    /// The first column of the first row of `sql` as text.
    fn text(&self, sql: &str) -> Result<String, String> {
        let c_sql = CString::new(sql).map_err(|e| e.to_string())?;
        let mut stmt = ptr::null_mut();
        // SAFETY: the handle is open, the statement is finalised before returning.
        unsafe {
            if ffi::sqlite3_prepare_v2(self.0, c_sql.as_ptr(), -1, &mut stmt, ptr::null_mut())
                != ffi::SQLITE_OK
            {
                return Err(self.error());
            }
            let out = match ffi::sqlite3_step(stmt) {
                ffi::SQLITE_ROW => {
                    let p = ffi::sqlite3_column_text(stmt, 0);
                    Ok(if p.is_null() {
                        String::new()
                    } else {
                        CStr::from_ptr(p.cast()).to_string_lossy().into_owned()
                    })
                }
                _ => Err(self.error()),
            };
            ffi::sqlite3_finalize(stmt);
            out
        }
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        // SAFETY: closing a handle (or null) once; every statement was finalised.
        unsafe {
            ffi::sqlite3_close(self.0);
        }
    }
}

/// Copies every page of `source` into a new database at `dest` in one backup step; returns the
/// page count.
fn copy(source: &Path, dest: &Path) -> Result<i64, String> {
    let src = Db::open(source, ffi::SQLITE_OPEN_READONLY)?;
    // A writer's commit may hold the WAL index for a moment: wait as the server does.
    // SAFETY: the handle is open.
    unsafe { ffi::sqlite3_busy_timeout(src.0, 10_000) };
    // The file must be a database, not any file: reading its schema says so.
    src.text("SELECT count(*) FROM sqlite_schema")
        .map_err(|e| format!("{}: {e}", source.display()))?;
    let dst = Db::open(dest, ffi::SQLITE_OPEN_READWRITE | ffi::SQLITE_OPEN_CREATE)?;
    let main = c"main";
    // SAFETY: both handles are open; the backup is finished before either is closed.
    let pages = unsafe {
        let b = ffi::sqlite3_backup_init(dst.0, main.as_ptr(), src.0, main.as_ptr());
        if b.is_null() {
            return Err(format!("can't start the backup: {}", dst.error()));
        }
        // -1: every page in one step, in one read transaction of the source (a copy made in
        // several steps starts again whenever another connection writes in between).
        let rc = ffi::sqlite3_backup_step(b, -1);
        let pages = i64::from(ffi::sqlite3_backup_pagecount(b));
        let finished = ffi::sqlite3_backup_finish(b);
        if rc != ffi::SQLITE_DONE {
            return Err(format!(
                "the backup stopped: {} (code {rc})",
                ffi_message(rc)
            ));
        }
        if finished != ffi::SQLITE_OK {
            return Err(format!("the backup failed: {}", dst.error()));
        }
        pages
    };
    match dst.text("PRAGMA quick_check")?.as_str() {
        "ok" => Ok(pages),
        other => Err(format!("the copy fails SQLite's quick_check: {other}")),
    }
}

fn ffi_message(rc: i32) -> String {
    // SAFETY: sqlite3_errstr returns a static string for any code.
    unsafe { CStr::from_ptr(ffi::sqlite3_errstr(rc)) }
        .to_string_lossy()
        .into_owned()
}
