//! Exports that stream. A large export (a million clients, the whole event log) is never held in
//! memory: a task of its own reads the database one keyset page at a time, turns each page into
//! the file's bytes on the blocking pool (masking and encoding are CPU work that would otherwise
//! hold an async worker for milliseconds per page), and hands the chunks to the response through
//! a channel of [`IN_FLIGHT`] pages. A slow client slows the reading down; a client that goes
//! away closes the channel, and the page query running at that moment is dropped (cancelled)
//! and no further page is read.
//!
//! The use cases check permissions and the filter before an [`Export`] exists, so every refusal
//! and every bad field is an ordinary error answer; once the file has started, a database error
//! ends the response without its last chunk (the client sees a cut-off transfer, never a file
//! that looks complete).

use crate::AppError;
use std::future::Future;
use tokio::sync::mpsc;

/// Rows read per query: a page of clients is about 250 KB of CSV.
pub(crate) const PAGE_ROWS: i64 = 2000;

/// Pages encoded ahead of the client: enough to keep the database busy while the network
/// drains the previous page, few enough that a slow client holds little memory.
const IN_FLIGHT: usize = 2;

/// A file being exported, as chunks of bytes in order. `None` from [`Export::next_chunk`]
/// is the end of the file; an error ends it early.
pub struct Export {
    chunks: mpsc::Receiver<Result<Vec<u8>, AppError>>,
}

impl Export {
    pub async fn next_chunk(&mut self) -> Option<Result<Vec<u8>, AppError>> {
        self.chunks.recv().await
    }
}

/// The producing end of an [`Export`].
pub(crate) struct Sink {
    tx: mpsc::Sender<Result<Vec<u8>, AppError>>,
}

pub(crate) fn channel() -> (Sink, Export) {
    let (tx, chunks) = mpsc::channel(IN_FLIGHT);
    (Sink { tx }, Export { chunks })
}

/// Why an export stopped before its last page.
pub(crate) enum Stopped {
    /// The client went away (closed the connection).
    Gone,
    /// The database failed mid-way; the response is cut off.
    Failed,
}

impl Sink {
    /// Runs `query` unless the client goes away first (then the query is dropped: cancelled).
    pub(crate) async fn read<T>(
        &self,
        query: impl Future<Output = Result<T, store::StoreError>>,
    ) -> Result<T, Stopped> {
        tokio::select! {
            r = query => match r {
                Ok(rows) => Ok(rows),
                Err(e) => {
                    tracing::warn!(error = %e, "export cut off: the database failed");
                    let _ = self.tx.send(Err(e.into())).await;
                    Err(Stopped::Failed)
                }
            },
            () = self.tx.closed() => Err(Stopped::Gone),
        }
    }

    /// Encodes `rows` on the blocking pool and hands the bytes to the response; waits while
    /// [`IN_FLIGHT`] chunks are already waiting for the client.
    pub(crate) async fn send<T: Send + 'static>(
        &self,
        rows: T,
        encode: impl FnOnce(T) -> Result<Vec<u8>, AppError> + Send + 'static,
    ) -> Result<(), Stopped> {
        let bytes = match tokio::task::spawn_blocking(move || encode(rows)).await {
            Ok(Ok(bytes)) => bytes,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "export cut off: a page could not be encoded");
                let _ = self.tx.send(Err(e)).await;
                return Err(Stopped::Failed);
            }
            Err(e) => {
                tracing::error!(error = %e, "export cut off: encoding a page failed");
                let _ = self
                    .tx
                    .send(Err(AppError::Internal(format!("export: {e}"))))
                    .await;
                return Err(Stopped::Failed);
            }
        };
        self.tx.send(Ok(bytes)).await.map_err(|_| Stopped::Gone)
    }
}

/// How an export ended, for its event: `None` when it was complete.
pub(crate) fn outcome(stopped: Option<Stopped>) -> &'static str {
    match stopped {
        None => "Yes",
        Some(Stopped::Gone) => "No: the client went away",
        Some(Stopped::Failed) => "No: the database failed",
    }
}
