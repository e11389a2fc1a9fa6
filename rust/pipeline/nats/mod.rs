//! Scale-out over NATS JetStream: the bus encoding, the sink that publishes every event a
//! runtime takes off its bus, and the source that feeds a runtime from a stream instead of
//! exchanges (books rebuilt, duplicates dropped, resumable through a durable consumer).

pub mod codec;
pub mod sink;
pub mod source;

use std::time::Duration;

/// The `bus_*` counters of a sink and a source, as `(name, value)` pairs.
#[must_use]
pub fn counter_pairs(
    sink: Option<&sink::SinkCounters>,
    source: Option<&source::SourceCounters>,
) -> Vec<(&'static str, u64)> {
    let mut v = Vec::new();
    if let Some(c) = sink {
        v.extend(c.pairs());
    }
    if let Some(c) = source {
        v.extend(c.pairs());
    }
    v
}

/// Where a worker reports that its set-up succeeded or failed.
pub(crate) type Ready = std::sync::mpsc::Sender<Result<(), NatsError>>;

/// Run `body` on a thread of its own, with a current-thread tokio runtime (the NATS client's
/// tasks run there too), so it outlives the engine's runtime. `body` reports on its [`Ready`]
/// once set up; this waits for that up to `wait`. Returns what is signalled when the thread
/// ends.
///
/// # Errors
/// The thread or runtime could not start, `body` reported a failure, or said nothing in time
/// (named with `servers`).
pub(crate) fn spawn_worker<F, Fut>(
    name: &str,
    servers: &[String],
    wait: Duration,
    body: F,
) -> Result<std::sync::mpsc::Receiver<()>, NatsError>
where
    F: FnOnce(Ready) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()>,
{
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), NatsError>>();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt.block_on(body(ready_tx)),
                Err(e) => {
                    let _ = ready_tx.send(Err(NatsError::Runtime(e.to_string())));
                }
            }
            let _ = done_tx.send(());
        })
        .map_err(|e| NatsError::Runtime(e.to_string()))?;
    match ready_rx.recv_timeout(wait) {
        Ok(Ok(())) => Ok(done_rx),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(NatsError::Connect {
            servers: servers.join(","),
            reason: "no answer in time".into(),
        }),
    }
}

/// How long connecting to the seed servers may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Errors of the NATS components (rendered at the boundary).
#[derive(Debug, Clone, thiserror::Error)]
pub enum NatsError {
    /// A server address is not `nats://host:port`.
    #[error("invalid NATS server address '{addr}': {reason}")]
    Address {
        /// As given.
        addr: String,
        /// Why.
        reason: String,
    },
    /// No server answered.
    #[error("cannot connect to NATS at {servers}: {reason}")]
    Connect {
        /// Seeds.
        servers: String,
        /// Why.
        reason: String,
    },
    /// The stream could not be created or found.
    #[error("JetStream stream '{stream}': {reason}")]
    Stream {
        /// Stream name.
        stream: String,
        /// Why.
        reason: String,
    },
    /// The durable consumer could not be created.
    #[error("JetStream consumer '{durable}' on stream '{stream}': {reason}")]
    Consumer {
        /// Stream name.
        stream: String,
        /// Durable name.
        durable: String,
        /// Why.
        reason: String,
    },
    /// The checkpoint file could not be read.
    #[error("checkpoint file {path}: {reason}")]
    Checkpoint {
        /// Path.
        path: String,
        /// Why.
        reason: String,
    },
    /// The component's thread or runtime could not start.
    #[error("cannot start the NATS worker: {0}")]
    Runtime(String),
}

/// Connect to the seeds (the client then follows the cluster and reconnects by itself).
///
/// # Errors
/// An invalid address, or no seed answered within [`CONNECT_TIMEOUT`].
pub async fn connect(servers: &[String], name: &str) -> Result<async_nats::Client, NatsError> {
    let mut addrs = Vec::with_capacity(servers.len());
    for s in servers {
        let a: async_nats::ServerAddr =
            s.parse().map_err(|e: std::io::Error| NatsError::Address {
                addr: s.clone(),
                reason: e.to_string(),
            })?;
        addrs.push(a);
    }
    if addrs.is_empty() {
        return Err(NatsError::Address {
            addr: String::new(),
            reason: "no server given".into(),
        });
    }
    async_nats::ConnectOptions::new()
        .name(name)
        .connection_timeout(CONNECT_TIMEOUT)
        .max_reconnects(None)
        .connect(addrs)
        .await
        .map_err(|e| NatsError::Connect {
            servers: servers.join(","),
            reason: e.to_string(),
        })
}
