//! Exports that stream. A large export (a million clients, the whole event log) is never held in
//! memory: a task of its own reads the database one keyset page at a time (each page one value
//! the database made, see `store::ClientExportPage`), turns each page into the file's bytes on
//! the blocking pool while it reads the next (decoding, masking and encoding are CPU work that
//! would otherwise hold an async worker for milliseconds per page), and hands the chunks to the
//! response through a channel of [`IN_FLIGHT`] pages. A slow client slows the reading down; a client that goes
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

    /// Starts encoding a page of `rows` rows on the blocking pool; [`Sink::deliver`] hands the
    /// bytes to the response. Meanwhile the export reads its next page: the database and the
    /// encoding work at the same time, on two cores.
    pub(crate) fn encode<T: Send + 'static>(
        &self,
        rows: usize,
        page: T,
        encode: impl FnOnce(T) -> Result<Vec<u8>, AppError> + Send + 'static,
    ) -> Encoding {
        Encoding {
            rows,
            bytes: tokio::task::spawn_blocking(move || encode(page)),
        }
    }

    /// Waits for `page`'s bytes and hands them to the response; waits while [`IN_FLIGHT`]
    /// chunks are already waiting for the client. Answers the rows it sent.
    pub(crate) async fn deliver(&self, page: Encoding) -> Result<usize, Stopped> {
        let bytes = match page.bytes.await {
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
        self.tx.send(Ok(bytes)).await.map_err(|_| Stopped::Gone)?;
        Ok(page.rows)
    }

    /// Encodes and hands over one chunk (a header).
    pub(crate) async fn send<T: Send + 'static>(
        &self,
        page: T,
        encode: impl FnOnce(T) -> Result<Vec<u8>, AppError> + Send + 'static,
    ) -> Result<(), Stopped> {
        self.deliver(self.encode(0, page, encode)).await.map(|_| ())
    }
}

/// A page being encoded on the blocking pool.
pub(crate) struct Encoding {
    rows: usize,
    bytes: tokio::task::JoinHandle<Result<Vec<u8>, AppError>>,
}

/// Reads an export's pages one after the other and streams them, each page's encoding
/// overlapping the next page's read. `read(cursor)` answers a page, the number of rows in it
/// and the next cursor; `encode` turns a page into bytes (on the blocking pool). A page with
/// fewer than `page_rows` rows is the last. Answers the rows sent and why it stopped early, if
/// it did.
pub(crate) async fn stream_pages<P, C, R>(
    sink: &Sink,
    mut cursor: C,
    page_rows: usize,
    mut read: impl FnMut(C) -> R,
    encode: impl Fn(P) -> Result<Vec<u8>, AppError> + Clone + Send + 'static,
) -> (usize, Option<Stopped>)
where
    P: Send + 'static,
    R: Future<Output = Result<(P, usize, C), store::StoreError>>,
{
    let mut count = 0;
    let mut pending: Option<Encoding> = None;
    loop {
        let (page, rows, next) = match sink.read(read(cursor)).await {
            Ok(read) => read,
            Err(stopped) => return (count, Some(stopped)),
        };
        // The page encoded while this one was read goes out first.
        if let Some(page) = pending.take() {
            match sink.deliver(page).await {
                Ok(rows) => count += rows,
                Err(stopped) => return (count, Some(stopped)),
            }
        }
        if rows == 0 {
            // The previous page was full and the last one: nothing more to send.
            return (count, None);
        }
        cursor = next;
        pending = Some(sink.encode(rows, page, encode.clone()));
        if rows < page_rows {
            break;
        }
    }
    if let Some(page) = pending {
        match sink.deliver(page).await {
            Ok(rows) => count += rows,
            Err(stopped) => return (count, Some(stopped)),
        }
    }
    (count, None)
}

/// How an export ended, for its event: `None` when it was complete.
pub(crate) fn outcome(stopped: Option<Stopped>) -> &'static str {
    match stopped {
        None => "Yes",
        Some(Stopped::Gone) => "No: the client went away",
        Some(Stopped::Failed) => "No: the database failed",
    }
}
