//! An object's body read as consecutive byte ranges, each a GetObject body read through
//! `into_async_read`, with the next few ranges already requested.
//!
//! One GetObject stream is bounded by its connection (and, in the local emulator, by reading the
//! file in 4 KiB steps); ranges requested ahead are sent while the current one is read, and S3
//! starts sending them at once. What they deliver early waits in the connections' socket
//! buffers, so memory in the process stays bounded by the read buffer.

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use tokio::io::{AsyncBufRead, AsyncRead, ReadBuf};
use tokio::task::JoinHandle;

use super::PicksError;
use super::store;

/// Where and how much to read.
#[derive(Clone)]
pub(super) struct Object {
    pub s3: Client,
    pub bucket: String,
    pub key: String,
    pub size: u64,
    /// The listed ETag: every range must come from that version of the object.
    pub etag: Option<String>,
}

pub(super) struct RangedBody {
    object: Object,
    range_bytes: u64,
    ahead: usize,
    /// Start of the next range to request.
    next_start: u64,
    current: Option<Pin<Box<dyn AsyncBufRead + Send>>>,
    /// Bytes the current range still owes.
    owed: u64,
    pending: VecDeque<JoinHandle<Result<(ByteStream, u64), PicksError>>>,
}

impl RangedBody {
    /// Reads `object` in ranges of `range_bytes`, with up to `ahead` ranges requested beyond
    /// the one being read. An object of at most one range is read with a plain GetObject.
    pub fn new(object: Object, range_bytes: u64, ahead: usize) -> RangedBody {
        let mut body = RangedBody {
            object,
            range_bytes: range_bytes.max(1),
            ahead,
            next_start: 0,
            current: None,
            owed: 0,
            pending: VecDeque::new(),
        };
        body.request_more();
        body
    }

    /// Keeps the current range plus `ahead` more requested, up to the end of the object.
    fn request_more(&mut self) {
        let wanted = self.ahead + usize::from(self.current.is_none());
        while self.pending.len() < wanted && (self.next_start < self.object.size || self.next_start == 0) {
            let start = self.next_start;
            let whole = start == 0 && self.object.size <= self.range_bytes;
            let end = if whole { self.object.size } else { (start + self.range_bytes).min(self.object.size) };
            // An empty object still gets its one (plain) request; then the loop ends.
            self.next_start = end.max(1);
            let object = self.object.clone();
            let range = (!whole).then(|| format!("bytes={start}-{}", end - 1));
            self.pending.push_back(tokio::spawn(async move {
                let stream = store::get_range(&object, range).await?;
                Ok((stream, end - start))
            }));
        }
    }
}

impl Drop for RangedBody {
    fn drop(&mut self) {
        for request in &self.pending {
            request.abort();
        }
    }
}

fn broken(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, message)
}

impl AsyncRead for RangedBody {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        loop {
            if let Some(current) = this.current.as_mut() {
                let before = buf.filled().len();
                ready!(current.as_mut().poll_read(cx, buf))?;
                let read = (buf.filled().len() - before) as u64;
                if read > this.owed {
                    return Poll::Ready(Err(broken(format!(
                        "a range of {} sent more bytes than asked for",
                        store::uri(&this.object.bucket, &this.object.key)
                    ))));
                }
                this.owed -= read;
                if read > 0 {
                    return Poll::Ready(Ok(()));
                }
                if this.owed > 0 {
                    return Poll::Ready(Err(broken(format!(
                        "a range of {} ended {} bytes early",
                        store::uri(&this.object.bucket, &this.object.key),
                        this.owed
                    ))));
                }
                this.current = None;
                this.request_more();
            }
            let Some(request) = this.pending.front_mut() else {
                return Poll::Ready(Ok(()));
            };
            let answer = ready!(Pin::new(request).poll(cx));
            this.pending.pop_front();
            let (stream, length) = match answer {
                Ok(Ok(answer)) => answer,
                Ok(Err(err)) => return Poll::Ready(Err(io::Error::other(err))),
                Err(join) => return Poll::Ready(Err(io::Error::other(join))),
            };
            this.current = Some(Box::pin(stream.into_async_read()));
            this.owed = length;
            this.request_more();
        }
    }
}

/// The `PicksError` a range request failed with, if that is what `err` carries.
pub(super) fn picks_error(err: io::Error) -> Result<PicksError, io::Error> {
    if !err.get_ref().is_some_and(|inner| inner.is::<PicksError>()) {
        return Err(err);
    }
    let kind = err.kind();
    match err.into_inner().map(|inner| inner.downcast::<PicksError>()) {
        Some(Ok(picks)) => Ok(*picks),
        Some(Err(inner)) => Err(io::Error::new(kind, inner)),
        None => Err(io::Error::from(kind)),
    }
}
