//! What every sandbox needs to serve and to play an outage: the outage switch, the listener
//! that lets it drop connections (in `refuse` mode a request to a service route marks its
//! connection killed ([`ConnectionKill`]), so its answer is never written and the connection
//! closes; the client sees the service unreachable rather than an HTTP answer, while the
//! `/sandbox/...` admin routes stay reachable to lift the outage), the admin route that sets it
//! ([`set_outage`]), and [`Served`]: a started server and how it stops.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// What the outage drill makes the service do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutageMode {
    /// Normal service.
    None,
    /// Every service route answers `503`.
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

impl Outage {
    /// What a service route answers instead of serving while an outage is on (`None`: serve):
    /// `unavailable()` in `unavailable` mode; in `refuse` mode the connection is killed, so
    /// that answer is never written.
    pub fn intercept(
        &self,
        connection: &ConnectionKill,
        unavailable: impl FnOnce() -> Response,
    ) -> Option<Response> {
        match self.get() {
            OutageMode::None => None,
            OutageMode::Unavailable => Some(unavailable()),
            OutageMode::Refuse => {
                connection.kill();
                Some(unavailable())
            }
        }
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

/// `POST /sandbox/outage` `{"mode":"unavailable"|"refuse"|"none"}`, for any sandbox.
pub fn set_outage(outage: &Outage, body: &[u8]) -> Response {
    #[derive(serde::Deserialize)]
    struct OutageRequest {
        mode: String,
    }
    let mode = serde_json::from_slice::<OutageRequest>(body)
        .ok()
        .and_then(|request| OutageMode::parse(&request.mode));
    let Some(mode) = mode else {
        let message = "expected {\"mode\": \"unavailable\" | \"refuse\" | \"none\"}";
        return (StatusCode::BAD_REQUEST, Json(json!({"error": message}))).into_response();
    };
    outage.set(mode);
    Json(json!({"mode": mode.as_str()})).into_response()
}

/// Binds `127.0.0.1:{port}` (0: any free port) for a sandbox.
pub async fn bind_loopback(port: u16) -> io::Result<(RefusingListener, SocketAddr)> {
    let address = SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, port));
    let inner = TcpListener::bind(address).await?;
    let address = inner.local_addr()?;
    Ok((RefusingListener { inner }, address))
}

/// A sandbox server being served: [`Served::start`] serves an app on a listener until
/// [`Served::shutdown`] or until dropped.
pub struct Served {
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<io::Result<()>>>,
}

impl Served {
    /// Serves `app` (with each request's [`ConnectionKill`] as connect info) on `listener`.
    pub fn start(listener: RefusingListener, app: axum::Router) -> Self {
        let (stop, stopped) = oneshot::channel::<()>();
        let app = app.into_make_service_with_connect_info::<ConnectionKill>();
        let server = axum::serve(listener, app).with_graceful_shutdown(async {
            let _ = stopped.await;
        });
        let task = tokio::spawn(async move { server.await });
        Self {
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Stops accepting and lets requests in flight finish (at most a second).
    pub async fn shutdown(mut self) -> Result<(), ServeError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let Some(mut task) = self.task.take() else {
            return Ok(());
        };
        match tokio::time::timeout(Duration::from_secs(1), &mut task).await {
            Ok(Ok(served)) => served.map_err(ServeError::Serve),
            Ok(Err(join)) => Err(ServeError::Task(join)),
            Err(_) => {
                task.abort();
                Ok(())
            }
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Why a sandbox server stopped badly.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("the sandbox server stopped: {0}")]
    Serve(#[source] std::io::Error),
    #[error("a sandbox task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}
