//! The SQLite single writer. See the module doc of [`crate::storage`].
//!
//! The writer is a dedicated OS thread that owns the only writing connection ([`SqliteTx`]) and
//! calls SQLite synchronously: a batch of jobs costs no thread hand-off per statement, only one
//! wake-up to take the batch and one reply per job. Jobs are futures (the [`Tx`] methods are
//! async so that other backends can be); here every [`Tx`] future is ready when returned, so a
//! job completes in one poll. A job that does wait on something else is driven to completion on
//! this thread through the runtime handle.

use std::any::Any;
use std::cell::Cell;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot};

use super::sqlite_tx::SqliteTx;
use super::{Tx, WriteJob, WriteOutbox};
use crate::bus::Bus;
use crate::error::{ApiError, ApiResult};

type Output = Box<dyn Any + Send>;

enum Job {
    Write {
        run: WriteJob,
        reply: oneshot::Sender<Result<Output, ApiError>>,
    },
    /// Commit what came before, close the connection (SQLite checkpoints and removes its WAL
    /// when the last connection closes), and stop.
    Close(oneshot::Sender<()>),
}

thread_local! {
    /// Set on the writer thread (see [`Writer::submit`]).
    static ON_WRITER_THREAD: Cell<bool> = const { Cell::new(false) };
}

/// Handle to the writer thread. Cheap to clone.
#[derive(Clone)]
pub(super) struct Writer {
    tx: mpsc::Sender<Job>,
}

impl Writer {
    /// Opens the writing connection on `path` and starts the writer thread. Must be called
    /// inside the Tokio runtime (the thread keeps its handle).
    pub(super) fn start(
        path: &Path,
        bus: Arc<dyn Bus>,
        batch_max: usize,
    ) -> anyhow::Result<Writer> {
        let conn = SqliteTx::open(path)?;
        let (tx, rx) = mpsc::channel(4096);
        let runtime = Handle::current();
        std::thread::Builder::new()
            .name("sotto-writer".into())
            .spawn(move || {
                // Inside the runtime's context: bus publication may spawn tasks.
                let _entered = runtime.enter();
                ON_WRITER_THREAD.set(true);
                run(conn, rx, bus, batch_max.max(1), &runtime);
            })?;
        Ok(Writer { tx })
    }

    /// Queues `run` for the next batch; returns its output once the batch is committed.
    pub(super) async fn submit(&self, run: WriteJob) -> Result<Output, ApiError> {
        if ON_WRITER_THREAD.get() {
            // A job waiting for another write would wait for itself: the writer runs one job
            // at a time. Fail it instead of stopping every write.
            return Err(ApiError::internal("a write job submitted another write"));
        }
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Job::Write { run, reply })
            .await
            .map_err(|_| ApiError::internal("writer stopped"))?;
        rx.await
            .map_err(|_| ApiError::internal("writer dropped a job"))?
    }

    /// Stops the writer once the jobs queued before this call are committed, and closes its
    /// connection. Later submissions fail with `internal`.
    pub(super) async fn close(&self) {
        let (done, rx) = oneshot::channel();
        if self.tx.send(Job::Close(done)).await.is_ok() {
            let _ = rx.await;
        }
    }
}

/// Drives `fut` to completion: one poll with a no-op waker (enough for every job whose only
/// awaits are [`Tx`] calls), else blocking this thread on the runtime.
fn complete<F: Future>(fut: F, runtime: &Handle) -> F::Output {
    let mut fut = pin!(fut);
    match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => out,
        Poll::Pending => runtime.block_on(fut),
    }
}

/// Takes the next batch: blocks for the first job, then takes what else is queued, up to `max`.
fn next_batch(rx: &mut mpsc::Receiver<Job>, batch: &mut Vec<Job>, max: usize) -> bool {
    let Some(first) = rx.blocking_recv() else {
        return false;
    };
    batch.push(first);
    while batch.len() < max {
        match rx.try_recv() {
            Ok(job) => batch.push(job),
            Err(_) => break,
        }
    }
    true
}

type Replies = Vec<(
    oneshot::Sender<Result<Output, ApiError>>,
    Result<Output, ApiError>,
)>;

/// Runs one batch in one transaction, each job in its own savepoint, collecting the jobs'
/// results in `replies` (to send once committed). An `Err` means nothing of the batch is
/// committed.
fn run_batch(
    conn: &mut SqliteTx,
    batch: &mut Vec<Job>,
    replies: &mut Replies,
    deferred: &mut WriteOutbox,
    closing: &mut Option<oneshot::Sender<()>>,
    runtime: &Handle,
) -> ApiResult<()> {
    conn.control("BEGIN IMMEDIATE")?;
    for job in batch.drain(..) {
        let (run, reply) = match job {
            Job::Write { run, reply } => (run, reply),
            Job::Close(done) => {
                // Jobs after the close request are dropped; their callers see an error.
                *closing = Some(done);
                break;
            }
        };
        conn.control("SAVEPOINT job")?;
        let mut outbox = WriteOutbox::default();
        // A job that panics fails alone, like one that returns an error: its savepoint is rolled
        // back and the writer goes on (an unwinding writer thread would stop every later write).
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
            complete(run(conn as &mut dyn Tx, &mut outbox), runtime)
        }))
        .unwrap_or_else(|_| Err(ApiError::internal("a write job panicked")));
        match result {
            Ok(v) => {
                conn.control("RELEASE job")?;
                deferred.append(&mut outbox);
                replies.push((reply, Ok(v)));
            }
            Err(e) => {
                conn.control("ROLLBACK TO job")?;
                conn.control("RELEASE job")?;
                replies.push((reply, Err(e)));
            }
        }
    }
    // Outside every savepoint: see `WriteOutbox` for why index writes wait until here.
    complete(deferred.apply_search_writes(conn), runtime)?;
    conn.control("COMMIT")
}

fn run(
    mut conn: SqliteTx,
    mut rx: mpsc::Receiver<Job>,
    bus: Arc<dyn Bus>,
    batch_max: usize,
    runtime: &Handle,
) {
    let mut batch = Vec::with_capacity(batch_max);
    let mut closing = None;
    while closing.is_none() && next_batch(&mut rx, &mut batch, batch_max) {
        let mut deferred = WriteOutbox::default();
        let mut replies = Vec::with_capacity(batch.len());
        let ran = run_batch(
            &mut conn,
            &mut batch,
            &mut replies,
            &mut deferred,
            &mut closing,
            runtime,
        );
        match ran {
            Ok(()) => {
                crate::metrics::METRICS.db_batches.inc();
                for m in deferred.into_messages() {
                    bus.publish(m);
                }
                for (reply, result) in replies {
                    let _ = reply.send(result);
                }
            }
            Err(e) => {
                if conn.in_transaction() {
                    let _ = conn.control("ROLLBACK");
                }
                let err = ApiError::internal(format_args!("batch commit failed: {e}"));
                for (reply, _) in replies {
                    let _ = reply.send(Err(err.clone()));
                }
                // Jobs not yet run when the failure hit are dropped (their callers see an
                // error), but a close request among them still closes.
                for job in batch.drain(..) {
                    if let Job::Close(done) = job {
                        closing = Some(done);
                    }
                }
            }
        }
    }
    batch.clear();
    drop(conn);
    if let Some(done) = closing {
        let _ = done.send(());
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use sotto_api::ErrorCode;

    use crate::bus::{Bus, BusMessage, Frame, InProcessBus};
    use crate::error::ApiError;
    use crate::metrics::METRICS;
    use crate::storage::sqlite::SqliteStorage;

    #[tokio::test]
    async fn concurrent_writes_share_commits_and_a_failed_job_rolls_back_alone() {
        let dir = tempfile::tempdir().expect("tmp");
        let bus: Arc<dyn Bus> = Arc::new(InProcessBus::new(1024));
        let mut events = bus.subscribe();
        let db = SqliteStorage::open(dir.path(), bus, 256)
            .await
            .expect("open");
        let before = METRICS.db_batches.get();
        let mut jobs = Vec::new();
        for i in 0..200i64 {
            let db = db.clone();
            jobs.push(tokio::spawn(async move {
                db.write(move |tx, outbox| {
                    Box::pin(async move {
                        tx.upsert_setting(&format!("k{i}"), "x", 0).await?;
                        outbox.push(BusMessage::Everyone {
                            frame: Frame::Binary(bytes::Bytes::from_static(&[0u8])),
                        });
                        if i == 7 {
                            // Written, then failed: must leave no trace and publish nothing.
                            return Err(ApiError::new(ErrorCode::InvalidInput, "job 7 fails"));
                        }
                        Ok(i)
                    })
                })
                .await
            }));
        }
        let mut ok = 0;
        for j in jobs {
            match j.await.expect("join") {
                Ok(_) => ok += 1,
                Err(e) => assert_eq!(e.code, ErrorCode::InvalidInput),
            }
        }
        assert_eq!(ok, 199);
        let batches = METRICS.db_batches.get() - before;
        assert!(
            batches < 200,
            "200 writes took {batches} commits: not batched"
        );
        let stored = db.settings().await.expect("settings");
        assert_eq!(stored.len(), 199);
        assert!(
            !stored.iter().any(|(k, _)| k == "k7"),
            "the failed job's write was rolled back"
        );
        let mut published = 0;
        while events.try_recv().is_ok() {
            published += 1;
        }
        assert_eq!(published, 199, "only committed jobs publish");
    }

    /// A job that awaits something other than its transaction (here a timer) is driven to
    /// completion on the writer thread instead of being lost or blocking the runtime; the jobs
    /// queued behind it still commit.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_job_that_waits_on_the_runtime_still_completes() {
        let dir = tempfile::tempdir().expect("tmp");
        let bus: Arc<dyn Bus> = Arc::new(InProcessBus::new(16));
        let db = SqliteStorage::open(dir.path(), bus, 16)
            .await
            .expect("open");
        let slow = {
            let db = db.clone();
            tokio::spawn(async move {
                db.write(|tx, _| {
                    Box::pin(async move {
                        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                        tx.upsert_setting("slow", "1", 0).await?;
                        Ok("slow")
                    })
                })
                .await
            })
        };
        let quick = db
            .write(|tx, _| {
                Box::pin(async move {
                    tx.upsert_setting("quick", "2", 0).await?;
                    Ok("quick")
                })
            })
            .await
            .expect("quick job");
        assert_eq!(quick, "quick");
        assert_eq!(slow.await.expect("join").expect("slow job"), "slow");
        let stored = db.settings().await.expect("settings");
        for key in ["slow", "quick"] {
            assert!(stored.iter().any(|(k, _)| k == key), "{key} was not stored");
        }
        db.close().await.expect("close");
    }

    /// A job that panics fails alone with `internal`: the jobs sharing its batch commit, and
    /// the writer keeps taking writes.
    #[tokio::test]
    async fn a_panicking_job_fails_alone_and_the_writer_goes_on() {
        let dir = tempfile::tempdir().expect("tmp");
        let bus: Arc<dyn Bus> = Arc::new(InProcessBus::new(16));
        let db = SqliteStorage::open(dir.path(), bus, 64)
            .await
            .expect("open");
        let mut jobs = Vec::new();
        for i in 0..20i64 {
            let db = db.clone();
            jobs.push(tokio::spawn(async move {
                db.write(move |tx, _| {
                    Box::pin(async move {
                        tx.upsert_setting(&format!("p{i}"), "x", 0).await?;
                        assert!(i != 5, "job 5 panics after writing");
                        Ok(i)
                    })
                })
                .await
            }));
        }
        for (i, job) in jobs.into_iter().enumerate() {
            match job.await.expect("join") {
                Ok(v) => assert_eq!(v, i as i64),
                Err(e) => {
                    assert_eq!(i, 5, "only the panicking job fails");
                    assert_eq!(e.code, ErrorCode::Internal);
                }
            }
        }
        let later = db
            .write(|tx, _| Box::pin(async move { tx.upsert_setting("later", "y", 0).await }))
            .await;
        assert!(later.is_ok(), "the writer still takes writes: {later:?}");
        let stored = db.settings().await.expect("settings");
        assert_eq!(stored.len(), 20, "19 jobs and the later one: {stored:?}");
        assert!(
            !stored.iter().any(|(k, _)| k == "p5"),
            "the panicked job's write was rolled back"
        );
    }

    /// A job that waits for another write fails that write at once instead of waiting for
    /// itself forever (the writer runs one job at a time), and the writer goes on.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_job_that_writes_from_inside_a_job_is_refused_not_deadlocked() {
        let dir = tempfile::tempdir().expect("tmp");
        let bus: Arc<dyn Bus> = Arc::new(InProcessBus::new(16));
        let db = SqliteStorage::open(dir.path(), bus, 16)
            .await
            .expect("open");
        let inner_db = db.clone();
        let inner = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            db.write(move |tx, _| {
                Box::pin(async move {
                    tx.upsert_setting("outer", "1", 0).await?;
                    let nested = inner_db
                        .write(|tx, _| {
                            Box::pin(async move { tx.upsert_setting("inner", "2", 0).await })
                        })
                        .await;
                    Ok(nested.map_err(|e| e.code))
                })
            }),
        )
        .await
        .expect("no deadlock")
        .expect("the outer job commits");
        assert_eq!(inner, Err(ErrorCode::Internal));
        let stored = db.settings().await.expect("settings");
        assert!(stored.iter().any(|(k, _)| k == "outer"));
        assert!(!stored.iter().any(|(k, _)| k == "inner"));
    }
}
