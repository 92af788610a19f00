//! The SQLite single writer. See the module doc of [`crate::storage`].

use std::any::Any;
use std::sync::Arc;

use sqlx::{Connection, SqliteConnection};
use tokio::sync::{mpsc, oneshot};

use super::{WriteJob, WriteOutbox};
use crate::bus::Bus;
use crate::error::ApiError;

type Output = Box<dyn Any + Send>;

enum Job {
    Write {
        run: WriteJob,
        reply: oneshot::Sender<Result<Output, ApiError>>,
    },
    /// Commit what came before, close the connection (SQLite checkpoints and removes its WAL),
    /// and stop.
    Close(oneshot::Sender<()>),
}

/// Handle to the writer task. Cheap to clone.
#[derive(Clone)]
pub(super) struct Writer {
    tx: mpsc::Sender<Job>,
}

impl Writer {
    pub(super) fn start(conn: SqliteConnection, bus: Arc<dyn Bus>, batch_max: usize) -> Writer {
        let (tx, rx) = mpsc::channel(4096);
        tokio::spawn(run(conn, rx, bus, batch_max.max(1)));
        Writer { tx }
    }

    /// Queues `run` for the next batch; returns its output once the batch is committed.
    pub(super) async fn submit(&self, run: WriteJob) -> Result<Output, ApiError> {
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

async fn run(
    mut conn: SqliteConnection,
    mut rx: mpsc::Receiver<Job>,
    bus: Arc<dyn Bus>,
    batch_max: usize,
) {
    let mut batch = Vec::with_capacity(batch_max);
    let mut closing = None;
    while closing.is_none() && rx.recv_many(&mut batch, batch_max).await > 0 {
        let mut replies = Vec::with_capacity(batch.len());
        let mut deferred = WriteOutbox::default();
        let commit = async {
            let mut tx = conn.begin().await?;
            for job in batch.drain(..) {
                let (run, reply) = match job {
                    Job::Write { run, reply } => (run, reply),
                    Job::Close(done) => {
                        // Jobs after the close request are dropped; their callers see an error.
                        closing = Some(done);
                        break;
                    }
                };
                let mut sp = tx.begin().await?;
                let mut outbox = WriteOutbox::default();
                let conn: &mut SqliteConnection = &mut sp;
                match run(conn, &mut outbox).await {
                    Ok(v) => {
                        sp.commit().await?;
                        deferred.append(&mut outbox);
                        replies.push((reply, Ok(v)));
                    }
                    Err(e) => {
                        sp.rollback().await?;
                        replies.push((reply, Err(e)));
                    }
                }
            }
            // Outside every savepoint: see `WriteOutbox` for why index writes wait until here.
            let conn: &mut SqliteConnection = &mut tx;
            deferred.apply_search_writes(conn).await?;
            tx.commit().await.map_err(ApiError::from)
        };
        match commit.await {
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
                let err = ApiError::internal(format_args!("batch commit failed: {e}"));
                for (reply, _) in replies {
                    let _ = reply.send(Err(err.clone()));
                }
                // Jobs not yet run when the failure hit are dropped; their callers see an error.
                batch.clear();
            }
        }
    }
    batch.clear();
    let _ = conn.close().await;
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
}
