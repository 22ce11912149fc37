//! A stream adapter that passes a flush to the socket only when something was written since
//! the last one.
//!
//! hyper's HTTP/1 dispatcher flushes its transport on every poll, written or not. On a real
//! socket an empty flush does nothing; madsim's simulated `TcpStream` sends one (possibly empty)
//! payload per flush, each with its own simulated link latency, so every wake-up of a
//! connection task would put an empty packet on the simulated wire, which in turn wakes the
//! peer. Dropping empty flushes keeps the simulated traffic to the bytes HTTP actually sends.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Wraps a stream; flushes reach it only after a write.
#[derive(Debug)]
pub struct FlushOnWrite<S> {
    inner: S,
    unflushed: bool,
}

impl<S> FlushOnWrite<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        FlushOnWrite { inner, unflushed: false }
    }

    /// The wrapped stream.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for FlushOnWrite<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for FlushOnWrite<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(result, Poll::Ready(Ok(written)) if written > 0) {
            self.unflushed = true;
        }
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(result, Poll::Ready(Ok(written)) if written > 0) {
            self.unflushed = true;
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !self.unflushed {
            return Poll::Ready(Ok(()));
        }
        let result = Pin::new(&mut self.inner).poll_flush(cx);
        if matches!(result, Poll::Ready(Ok(()))) {
            self.unflushed = false;
        }
        result
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.unflushed {
            std::task::ready!(self.as_mut().poll_flush(cx))?;
        }
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// Records every flush and what had been written before it.
    #[derive(Clone, Default)]
    struct Recorder {
        written: Arc<Mutex<Vec<u8>>>,
        flushes: Arc<Mutex<Vec<usize>>>,
    }

    impl AsyncWrite for Recorder {
        fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
            self.written.lock().unwrap().extend_from_slice(buf);
            Poll::Ready(Ok(buf.len()))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            let written = self.written.lock().unwrap().len();
            self.flushes.lock().unwrap().push(written);
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn only_flushes_after_writes_reach_the_stream() {
        use tokio::io::AsyncWriteExt;
        let recorder = Recorder::default();
        let mut stream = FlushOnWrite::new(recorder.clone());
        stream.flush().await.unwrap();
        stream.write_all(b"abc").await.unwrap();
        stream.flush().await.unwrap();
        stream.flush().await.unwrap();
        stream.write_all(b"de").await.unwrap();
        stream.shutdown().await.unwrap();
        assert_eq!(*recorder.written.lock().unwrap(), b"abcde");
        // One flush after "abc", one (from shutdown) after "de"; the empty ones never arrive.
        assert_eq!(*recorder.flushes.lock().unwrap(), [3, 5]);
    }
}
