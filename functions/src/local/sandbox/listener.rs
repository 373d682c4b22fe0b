//! The outage switch and the listener that lets it drop connections: in `refuse` mode a
//! request to a PayPal route marks its connection killed ([`ConnectionKill`]), so its answer is
//! never written and the connection closes; the client sees PayPal unreachable rather than an
//! HTTP answer, while the `/sandbox/...` admin routes stay reachable to lift the outage.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// What the outage drill makes PayPal do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutageMode {
    /// Normal service.
    None,
    /// Every PayPal route answers `503 SERVICE_UNAVAILABLE`.
    Unavailable,
    /// Connections are dropped without an answer.
    Refuse,
}

impl OutageMode {
    pub fn parse(mode: &str) -> Option<Self> {
        match mode {
            "none" => Some(Self::None),
            "unavailable" => Some(Self::Unavailable),
            "refuse" => Some(Self::Refuse),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Unavailable => "unavailable",
            Self::Refuse => "refuse",
        }
    }
}

/// The current [`OutageMode`], shared by the routes and the listener.
#[derive(Debug, Default)]
pub struct Outage(AtomicU8);

impl Outage {
    pub fn get(&self) -> OutageMode {
        match self.0.load(Ordering::SeqCst) {
            1 => OutageMode::Unavailable,
            2 => OutageMode::Refuse,
            _ => OutageMode::None,
        }
    }

    pub fn set(&self, mode: OutageMode) {
        let code = match mode {
            OutageMode::None => 0,
            OutageMode::Unavailable => 1,
            OutageMode::Refuse => 2,
        };
        self.0.store(code, Ordering::SeqCst);
    }
}

/// A TCP listener whose connections can be killed from a request ([`ConnectionKill`]).
pub struct RefusingListener {
    pub inner: TcpListener,
}

impl axum::serve::Listener for RefusingListener {
    type Io = RefusableStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.inner.accept().await {
                Ok((stream, address)) => {
                    let stream = RefusableStream {
                        inner: stream,
                        kill: Arc::new(AtomicBool::new(false)),
                    };
                    return (stream, address);
                }
                // Out of file descriptors and the like: wait a little, as axum's own does.
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// A connection that, once killed, reads end-of-stream and fails every write.
pub struct RefusableStream {
    inner: TcpStream,
    kill: Arc<AtomicBool>,
}

impl RefusableStream {
    fn killed(&self) -> bool {
        self.kill.load(Ordering::SeqCst)
    }
}

/// The kill switch of the connection a request came on (its connect info).
#[derive(Debug, Clone)]
pub struct ConnectionKill(Arc<AtomicBool>);

impl ConnectionKill {
    /// Drops the connection instead of answering.
    pub fn kill(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, RefusingListener>>
    for ConnectionKill
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, RefusingListener>) -> Self {
        Self(stream.io().kill.clone())
    }
}

impl AsyncRead for RefusableStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.killed() {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for RefusableStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.killed() {
            return Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
