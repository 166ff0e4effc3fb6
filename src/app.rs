//! Wiring: builds the adapters from settings, starts the tasks, and stops
//! them in order on shutdown (stop consuming, finish in-flight work, flush).

use crate::amqp::consumer::Consumer;
use crate::amqp::sink::EventSink;
use crate::amqp::{BrokerHealth, Publisher};
use crate::config::Settings;
use crate::engine::outbox::{Dispatcher, Sinks};
use crate::engine::timers::TimerRunner;
use crate::engine::{Clock, Context, Engine, FileClock, SystemClock};
use crate::fhir::FhirClient;
use crate::fhir::poller::Poller;
use crate::fhir::sink::FhirSink;
use crate::http::{AppState, router};
use crate::ingest::Reading;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot open the store ({backend}): {source}")]
    Store {
        backend: String,
        source: crate::store::StoreError,
    },
    #[error(
        "store.patient_key is not set: patients are looked up by an HMAC of their NHS number keyed with it. \
         Make one once with `openssl rand -hex 32 > /etc/ips-bridge/patient.key` (mode 0600, backed up with the database) \
         and set store.patient_key_file (IPS__STORE__PATIENT_KEY_FILE) to that file"
    )]
    NoPatientKey,
    #[error("store.patient_key: {0}")]
    PatientKey(#[from] crate::domain::PatientKeyError),
    #[error("cannot build the FHIR client: {0}")]
    Fhir(#[from] crate::fhir::FhirError),
    #[error("{0}")]
    Web(#[from] crate::web::WebError),
    /// The cause follows in the error chain (`main` prints it whole).
    #[error("cannot build the MESH client")]
    Mesh(#[from] crate::mesh::MeshError),
    #[error("cannot set up the rest-hook's mutual TLS: {0}")]
    WebhookTls(#[from] crate::http::tls::TlsError),
    #[error("cannot listen on {addr}: {source} (is another instance running? change http.listen)")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A started bridge.
pub struct Running {
    pub http_addr: SocketAddr,
    pub engine: Engine,
    pub shutdown: CancellationToken,
    tasks: JoinSet<()>,
    publisher: Arc<Publisher>,
}

/// Starts every part of the bridge. Migrations are applied first (sqlx takes
/// a lock, so replicas starting together are safe).
pub async fn start(settings: Settings) -> Result<Running, StartError> {
    let store_err = |source| StartError::Store {
        backend: crate::config::redact_url(&settings.store.url),
        source,
    };
    let patient_key = settings.patient_key().ok_or(StartError::NoPatientKey)??;
    let mesh = match settings.mesh.enabled {
        true => Some(Arc::new(crate::mesh::MeshClient::new(&settings.mesh)?)),
        false => None,
    };
    let (store, dead_letters) = crate::store::dead_letters::connect(&settings.store)
        .await
        .map_err(store_err)?;
    store.migrate().await.map_err(store_err)?;
    rekey_patients(store.as_ref(), &patient_key)
        .await
        .map_err(store_err)?;
    let clock: Arc<dyn Clock> = match &settings.clock.file {
        Some(path) => Arc::new(FileClock::new(path.clone())),
        None => Arc::new(SystemClock),
    };
    let engine = Engine::new(store, Context::from_settings(&settings, patient_key), clock);
    let reading = Arc::new(Reading::from_settings(&settings));
    let fhir = Arc::new(FhirClient::new(&settings.fhir)?);
    let publisher = Arc::new(Publisher::new(&settings.amqp, &settings.service.name));
    let broker = Arc::new(BrokerHealth::default());
    let poll_wake = Arc::new(Notify::new());
    let shutdown = CancellationToken::new();
    let mut tasks = JoinSet::new();

    let listener = tokio::net::TcpListener::bind(settings.http.listen)
        .await
        .map_err(|source| StartError::Listen {
            addr: settings.http.listen,
            source,
        })?;
    let http_addr = listener.local_addr().map_err(|source| StartError::Listen {
        addr: settings.http.listen,
        source,
    })?;
    let state = AppState {
        engine: engine.clone(),
        fhir: fhir.clone(),
        broker: broker.clone(),
        prometheus: crate::telemetry::init_metrics(),
        api_token: settings.http.api_token.clone(),
        webhook_secret: settings.http.webhook_secret.clone(),
        poll_wake: poll_wake.clone(),
    };
    let hook_tls_addr = start_hook_tls(&settings, &state, &shutdown, &mut tasks).await?;
    // The API and, when enabled, the staff pages (which sit above it).
    let mut routes = router(state, hook_tls_addr.is_none());
    if let Some(web) = start_web(&settings, engine.store.clone(), &mut tasks)? {
        routes = routes.merge(crate::web::router(crate::web::WebApp {
            engine: engine.clone(),
            fhir: fhir.clone(),
            web,
        }));
    }
    let http_shutdown = shutdown.clone();
    tasks.spawn(async move {
        let served = axum::serve(listener, routes)
            .with_graceful_shutdown(http_shutdown.cancelled_owned())
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "HTTP server failed");
        }
    });

    let consumer = Consumer {
        settings: settings.amqp.clone(),
        name: settings.service.name.clone(),
        engine: engine.clone(),
        reading: reading.clone(),
        health: broker,
        dead_letters: dead_letters.clone(),
    };
    tasks.spawn(consumer.run(shutdown.clone()));

    // The engine knows sinks only through its `Sink` trait: wired here.
    let sinks = Sinks {
        fhir: Arc::new(FhirSink {
            client: fhir.clone(),
        }),
        events: Arc::new(EventSink {
            publisher: publisher.clone(),
            exchange: settings.amqp.events_exchange.clone(),
        }),
        mesh: mesh.clone().map(|client| {
            Arc::new(crate::mesh::sink::MeshSink { client }) as Arc<dyn crate::engine::outbox::Sink>
        }),
    };
    let dispatcher = Dispatcher::new(engine.clone(), sinks, settings.outbox.clone());
    tasks.spawn(dispatcher.run(shutdown.clone()));

    let timers = TimerRunner::new(engine.clone(), settings.timers.poll_interval);
    tasks.spawn(timers.run(shutdown.clone()));

    let housekeeping = crate::engine::housekeeping::Housekeeping {
        engine: engine.clone(),
        inbox_retention: settings.store.inbox_retention,
        outbox_retention: settings.store.outbox_retention,
        interval: settings.store.housekeeping_interval,
    };
    tasks.spawn(housekeeping.run(shutdown.clone()));

    // Every series at zero from the first scrape (see telemetry::catalog).
    crate::telemetry::catalog::register_zero(&settings.outreach.rules().ids());
    let gauges = crate::engine::gauges::StoredGauges {
        engine: engine.clone(),
        interval: settings.http.metrics_refresh,
    };
    tasks.spawn(gauges.run(shutdown.clone()));

    if let Some(client) = mesh {
        let inbox = crate::mesh::inbox::InboxPoller {
            engine: engine.clone(),
            client,
            dead_letters,
            interval: settings.mesh.poll_interval,
            auth_backoff: settings.mesh.auth_backoff,
        };
        tasks.spawn(inbox.run(shutdown.clone()));
    }

    if settings.poller.enabled {
        let poller = Poller {
            engine: engine.clone(),
            reading,
            fhir,
            interval: settings.poller.interval,
            overlap: settings.poller.overlap,
            page_size: settings.poller.page_size,
            resources: settings.poller.resources.clone(),
            wake: poll_wake,
        };
        tasks.spawn(poller.run(shutdown.clone()));
    }
    let webhook_tls_addr = hook_tls_addr.map(|a| a.to_string());
    tracing::info!(%http_addr, webhook_tls_addr, store = engine.store.backend(), "ips-bridge started");
    Ok(Running {
        http_addr,
        engine,
        shutdown,
        tasks,
        publisher,
    })
}

/// The staff pages' state when they are enabled. The provider's discovery
/// document is read in the background: a provider that is down must not
/// stop the bridge's other work, and sign-in tries again when it is needed.
fn start_web(
    settings: &Settings,
    store: Arc<dyn crate::store::Store>,
    tasks: &mut JoinSet<()>,
) -> Result<Option<Arc<crate::web::WebState>>, StartError> {
    if !settings.web.enabled {
        return Ok(None);
    }
    let web = Arc::new(crate::web::WebState::new(&settings.web)?.with_staff_store(store));
    let warm = web.clone();
    tasks.spawn(async move {
        if let Err(e) = warm.discover().await {
            tracing::error!(
                error = %e,
                issuer = %warm.settings().issuer,
                "staff pages: cannot read the identity provider's discovery document; sign-in will try again"
            );
        }
    });
    Ok(Some(web))
}

/// Re-hashes stored patients when their hashes were made with another scheme
/// or key (the first start after upgrading from plain SHA-256, or after a key
/// rotation), before anything can look a patient up.
async fn rekey_patients(
    store: &dyn crate::store::Store,
    key: &crate::domain::PatientKey,
) -> crate::store::Result<()> {
    use crate::domain::NhsNumber;
    let rehash = |n: &str| NhsNumber::parse(n).ok().map(|n| n.lookup_hash(key));
    let now = crate::engine::ms(time::OffsetDateTime::now_utc());
    let n = store
        .patients_rekey(key.fingerprint(), &rehash, now)
        .await?;
    if n > 0 {
        tracing::info!(
            patients = n,
            key = key.fingerprint(),
            "patient lookup hashes re-keyed"
        );
    }
    Ok(())
}

impl Running {
    /// Stops consuming, lets in-flight batches and deliveries finish (up to
    /// `grace`), then closes the broker and store connections.
    pub async fn stop(mut self, grace: Duration) {
        self.shutdown.cancel();
        let drained = tokio::time::timeout(grace, async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                ?grace,
                "tasks still running after the grace period; aborting them"
            );
            self.tasks.abort_all();
        }
        self.publisher.close().await;
        self.engine.store.close().await;
        tracing::info!("ips-bridge stopped");
    }

    /// Waits until every task has ended by itself (after `shutdown` is cancelled).
    pub async fn wait(&mut self) {
        while self.tasks.join_next().await.is_some() {}
    }
}

/// The rest-hook's own mutual-TLS listener, when `[http.webhook_tls]` is on;
/// its bound address (the port may be 0 in tests).
async fn start_hook_tls(
    settings: &Settings,
    state: &crate::http::AppState,
    shutdown: &CancellationToken,
    tasks: &mut JoinSet<()>,
) -> Result<Option<SocketAddr>, StartError> {
    let Some(addr) = settings.http.webhook_tls.listen_addr() else {
        return Ok(None);
    };
    let config = crate::http::tls::server_config(&settings.http.webhook_tls)?;
    let listen_error = |source| StartError::Listen { addr, source };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(listen_error)?;
    let bound = listener.local_addr().map_err(listen_error)?;
    tasks.spawn(crate::http::tls::serve(
        listener,
        config,
        crate::http::hook_router(state.clone()),
        shutdown.clone(),
    ));
    Ok(Some(bound))
}
