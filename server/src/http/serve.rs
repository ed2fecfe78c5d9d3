//! The connection loop: accepts TCP connections and serves the application
//! on each with hyper's HTTP/1 server, with the limits `axum::serve` lacks,
//! so that slow or hostile clients cannot hold the server:
//!
//! - **header read timeout**: a request's header must arrive whole within
//!   [`NetLimits::header_timeout`] (hyper's timer; on a kept-alive
//!   connection it runs from the end of the previous response);
//! - **body progress**: a request body that yields no bytes for
//!   [`NetLimits::body_timeout`] fails, and the request is answered `408`;
//!   a response the client stops reading for as long is dropped;
//! - **idle keep-alive**: a connection with no request in flight and no bytes
//!   moving for [`NetLimits::idle_timeout`] is closed;
//! - **connection cap**: at [`NetLimits::max_connections`] open connections,
//!   accepting one more drops the connection that is idle, or stalled in its
//!   header or body, for longest; if none is, the new one gets `503`;
//! - **shutdown deadline**: on SIGTERM/SIGINT the listener closes,
//!   connections without a request in flight (idle, or a header still
//!   arriving) close, requests in flight get
//!   [`NetLimits::shutdown_timeout`], then everything left is dropped and
//!   [`run`] returns, so the caller can checkpoint and release the lock.

use std::collections::HashMap;
use std::convert::Infallible;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Request, Response, StatusCode, header};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;

use crate::config::NetLimits;

/// Milliseconds since the first call (a cheap monotonic clock for atomics).
fn now_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as u64
}

/// What the loop knows about one open connection.
#[derive(Debug, Default)]
struct Conn {
    /// Requests whose handler is running.
    busy: AtomicUsize,
    /// The handler is waiting for request body bytes.
    waiting_body: AtomicBool,
    /// A response write is waiting for the client to read.
    write_pending: AtomicBool,
    /// When bytes last moved either way (see [`now_ms`]).
    last_activity: AtomicU64,
    /// Drop the connection now.
    kill: Notify,
}

impl Conn {
    fn touch(&self) {
        self.last_activity.store(now_ms(), Ordering::Relaxed);
    }
    fn quiet_for(&self) -> Duration {
        Duration::from_millis(now_ms().saturating_sub(self.last_activity.load(Ordering::Relaxed)))
    }
    /// Whether dropping it loses no work a client is actively doing: no
    /// request in flight, or one stalled on its body or response for 1 s.
    fn evictable(&self) -> bool {
        self.busy.load(Ordering::Relaxed) == 0
            || ((self.waiting_body.load(Ordering::Relaxed)
                || self.write_pending.load(Ordering::Relaxed))
                && self.quiet_for() >= Duration::from_secs(1))
    }
}

/// The socket, noting every byte that moves.
struct Tracked {
    io: TcpStream,
    conn: Arc<Conn>,
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.io).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.conn.touch();
        }
        r
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write(cx, data);
        self.note_write(&r);
        r
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.note_write(&r);
        r
    }
    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

impl Tracked {
    fn note_write(&self, r: &Poll<io::Result<usize>>) {
        match r {
            Poll::Pending => self.conn.write_pending.store(true, Ordering::Relaxed),
            Poll::Ready(res) => {
                self.conn.write_pending.store(false, Ordering::Relaxed);
                if matches!(res, Ok(n) if *n > 0) {
                    self.conn.touch();
                }
            }
        }
    }
}

/// A request body that fails when no frame arrives for `timeout`.
struct TimedBody {
    inner: Incoming,
    timeout: Duration,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    conn: Arc<Conn>,
    timed_out: Arc<AtomicBool>,
    /// Set once the body has been read to its end.
    ended: Arc<AtomicBool>,
}

impl hyper::body::Body for TimedBody {
    type Data = bytes::Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(r) => {
                this.sleep = None;
                this.conn.waiting_body.store(false, Ordering::Relaxed);
                if r.is_none() || this.inner.is_end_stream() {
                    this.ended.store(true, Ordering::Relaxed);
                }
                Poll::Ready(r.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => {
                this.conn.waiting_body.store(true, Ordering::Relaxed);
                let timeout = this.timeout;
                let sleep = this
                    .sleep
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                if sleep.as_mut().poll(cx).is_ready() {
                    this.timed_out.store(true, Ordering::Relaxed);
                    this.conn.waiting_body.store(false, Ordering::Relaxed);
                    return Poll::Ready(Some(Err(format!(
                        "no request body bytes for {} s",
                        timeout.as_secs_f64()
                    )
                    .into())));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Decrements the busy count when the handler is done (or dropped).
struct BusyGuard(Arc<Conn>);

impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::Relaxed);
        self.0.waiting_body.store(false, Ordering::Relaxed);
        self.0.touch();
    }
}

fn detail(status: StatusCode, msg: &str) -> Response<Body> {
    let mut r = Response::new(Body::from(serde_json::json!({ "detail": msg }).to_string()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    super::secure_headers::add(r.headers_mut());
    r
}

/// The largest connection count the open-file limit allows, keeping a
/// quarter (at least 64) of the descriptors for the database and files.
/// Raises the soft limit to the hard one first.
pub fn max_connections_for_fd_limit() -> usize {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    let got = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0;
    if !got {
        return 1024;
    }
    if lim.rlim_cur < lim.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: as above.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            lim.rlim_cur = lim.rlim_max;
        }
    }
    let n = usize::try_from(lim.rlim_cur)
        .unwrap_or(usize::MAX)
        .min(1 << 20);
    n.saturating_sub((n / 4).max(64)).max(16)
}

/// Open connections, for the cap.
#[derive(Default)]
struct Registry {
    next: u64,
    conns: HashMap<u64, Arc<Conn>>,
}

/// Serves `app` on `listener` until `shutdown` resolves, then drains
/// within `limits.shutdown_timeout`. Returns when no connection is left.
pub async fn run(
    listener: TcpListener,
    app: Router,
    limits: NetLimits,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let cap = match limits.max_connections {
        0 => max_connections_for_fd_limit(),
        n => n.min(max_connections_for_fd_limit()),
    };
    let registry = Arc::new(Mutex::new(Registry::default()));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, _) = tokio::select! {
            () = &mut shutdown => break,
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(e) => {
                    // Out of descriptors or a transient error: the cap should
                    // prevent the former; back off briefly either way.
                    eprintln!("simtrack server: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
            Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
        };
        let conn = Arc::new(Conn::default());
        conn.touch();
        let id = {
            let mut reg = registry.lock().unwrap_or_else(|p| p.into_inner());
            if reg.conns.len() >= cap {
                let victim = reg
                    .conns
                    .iter()
                    .filter(|(_, c)| c.evictable())
                    .min_by_key(|(_, c)| c.last_activity.load(Ordering::Relaxed))
                    .map(|(id, c)| (*id, c.clone()));
                match victim {
                    Some((vid, v)) => {
                        // Out of the count now, so the next accept picks another.
                        reg.conns.remove(&vid);
                        v.kill.notify_one();
                    }
                    None => {
                        drop(reg);
                        let _ = stream.try_write(
                            b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: 45\r\nconnection: close\r\n\r\n{\"detail\": \"too many connections, try again\"}",
                        );
                        continue;
                    }
                }
            }
            reg.next += 1;
            let id = reg.next;
            reg.conns.insert(id, conn.clone());
            id
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let limits = limits.clone();
        let stop = stop_rx.clone();
        let registry = registry.clone();
        tasks.spawn(async move {
            serve_one(stream, app, &limits, conn, stop).await;
            registry
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .conns
                .remove(&id);
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(limits.shutdown_timeout, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        eprintln!(
            "simtrack server: {} connection(s) still open after the {} s shutdown deadline; dropping them",
            tasks.len(),
            limits.shutdown_timeout.as_secs_f64()
        );
        tasks.shutdown().await;
    }
}

async fn serve_one(
    stream: TcpStream,
    app: Router,
    limits: &NetLimits,
    conn: Arc<Conn>,
    mut stop: watch::Receiver<bool>,
) {
    let body_timeout = limits.body_timeout;
    let peer = stream.peer_addr().ok();
    let conn2 = conn.clone();
    let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
        let conn = conn2.clone();
        let mut app = app.clone();
        conn.busy.fetch_add(1, Ordering::Relaxed);
        let guard = BusyGuard(conn.clone());
        let timed_out = Arc::new(AtomicBool::new(false));
        let ended = Arc::new(AtomicBool::new(false));
        let mut req = req;
        if let Some(p) = peer {
            req.extensions_mut().insert(axum::extract::ConnectInfo(p));
        }
        let req = req.map(|b| {
            ended.store(hyper::body::Body::is_end_stream(&b), Ordering::Relaxed);
            Body::new(TimedBody {
                inner: b,
                timeout: body_timeout,
                sleep: None,
                conn: conn.clone(),
                timed_out: timed_out.clone(),
                ended: ended.clone(),
            })
        });
        async move {
            let resp = tower_service::Service::call(&mut app, req).await;
            drop(guard);
            let resp = match resp {
                Ok(r) => r,
                Err(e) => match e {},
            };
            if timed_out.load(Ordering::Relaxed) {
                return Ok::<_, Infallible>(detail(
                    StatusCode::REQUEST_TIMEOUT,
                    &format!(
                        "the request body stalled for {} s",
                        body_timeout.as_secs_f64()
                    ),
                ));
            }
            let mut resp = resp;
            if !ended.load(Ordering::Relaxed) {
                // Answered before the body was read whole (an early 4xx/5xx):
                // hyper closes the connection, so say so, and a client does
                // not send its next request on it.
                resp.headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            Ok(resp)
        }
    });
    let io = TokioIo::new(Tracked {
        io: stream,
        conn: conn.clone(),
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    let served = builder.serve_connection(io, svc);
    tokio::pin!(served);
    let tick_every = (limits.idle_timeout.min(limits.body_timeout) / 4)
        .clamp(Duration::from_millis(100), Duration::from_secs(1));
    let mut tick = tokio::time::interval(tick_every);
    let mut stopping = *stop.borrow();
    if stopping {
        return;
    }
    loop {
        tokio::select! {
            _ = served.as_mut() => return,
            () = conn.kill.notified() => return,
            r = stop.changed(), if !stopping => {
                if r.is_err() || *stop.borrow() {
                    // Shutting down: a connection with no request in flight
                    // (idle, or its header still arriving) is closed now;
                    // one with a request finishes it, within the deadline.
                    if conn.busy.load(Ordering::Relaxed) == 0 {
                        return;
                    }
                    stopping = true;
                    served.as_mut().graceful_shutdown();
                }
            }
            _ = tick.tick() => {
                let quiet = conn.quiet_for();
                let busy = conn.busy.load(Ordering::Relaxed) > 0;
                if !busy && quiet >= limits.idle_timeout {
                    return;
                }
                if conn.write_pending.load(Ordering::Relaxed) && quiet >= body_timeout {
                    return;
                }
            }
        }
    }
}
