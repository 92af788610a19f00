//! The single database writer. See the module doc of [`crate::storage`].

use std::any::Any;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use sqlx::{Connection, SqliteConnection};
use tokio::sync::{mpsc, oneshot};

use crate::bus::{Bus, BusMessage};
use crate::error::ApiError;

/// Bus messages a job wants published once (and only if) its writes are committed.
pub type WriteOutbox = Vec<BusMessage>;

type Output = Box<dyn Any + Send>;
type JobFn = Box<
    dyn for<'c> FnOnce(
            &'c mut SqliteConnection,
            &'c mut WriteOutbox,
        ) -> BoxFuture<'c, Result<Output, ApiError>>
        + Send,
>;

struct Job {
    run: JobFn,
    reply: oneshot::Sender<Result<Output, ApiError>>,
}

/// Handle to the writer task. Cheap to clone.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Job>,
}

impl Writer {
    pub(super) fn start(conn: SqliteConnection, bus: Arc<dyn Bus>, batch_max: usize) -> Writer {
        let (tx, rx) = mpsc::channel(4096);
        tokio::spawn(run(conn, rx, bus, batch_max.max(1)));
        Writer { tx }
    }

    /// Runs `job` in its own savepoint inside the writer's next batch and returns its result
    /// once the batch is committed. If the job fails, its writes are rolled back and its
    /// outbox discarded; other jobs in the batch are unaffected.
    pub async fn write<T, F>(&self, job: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(
                &'c mut SqliteConnection,
                &'c mut WriteOutbox,
            ) -> BoxFuture<'c, Result<T, ApiError>>
            + Send
            + 'static,
    {
        let run: JobFn = Box::new(move |conn, outbox| {
            let fut = job(conn, outbox);
            Box::pin(async move { fut.await.map(|v| Box::new(v) as Output) })
        });
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Job { run, reply })
            .await
            .map_err(|_| ApiError::internal("writer stopped"))?;
        let out = rx
            .await
            .map_err(|_| ApiError::internal("writer dropped a job"))??;
        out.downcast::<T>()
            .map(|b| *b)
            .map_err(|_| ApiError::internal("writer type mismatch"))
    }
}

async fn run(
    mut conn: SqliteConnection,
    mut rx: mpsc::Receiver<Job>,
    bus: Arc<dyn Bus>,
    batch_max: usize,
) {
    let mut batch = Vec::with_capacity(batch_max);
    while rx.recv_many(&mut batch, batch_max).await > 0 {
        let mut replies = Vec::with_capacity(batch.len());
        let mut published = Vec::new();
        let commit = async {
            let mut tx = conn.begin().await?;
            for job in batch.drain(..) {
                let mut sp = tx.begin().await?;
                let mut outbox = WriteOutbox::new();
                match (job.run)(&mut sp, &mut outbox).await {
                    Ok(v) => {
                        sp.commit().await?;
                        published.append(&mut outbox);
                        replies.push((job.reply, Ok(v)));
                    }
                    Err(e) => {
                        sp.rollback().await?;
                        replies.push((job.reply, Err(e)));
                    }
                }
            }
            tx.commit().await
        };
        match commit.await {
            Ok(()) => {
                crate::metrics::METRICS.db_batches.inc();
                for m in published {
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
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use sotto_api::ErrorCode;

    use crate::bus::{Bus, BusMessage, Frame, InProcessBus};
    use crate::error::ApiError;
    use crate::metrics::METRICS;
    use crate::storage::Db;

    #[tokio::test]
    async fn concurrent_writes_share_commits_and_a_failed_job_rolls_back_alone() {
        let dir = tempfile::tempdir().expect("tmp");
        let bus: Arc<dyn Bus> = Arc::new(InProcessBus::new(1024));
        let mut events = bus.subscribe();
        let db = Db::open(dir.path(), bus, 256).await.expect("open");
        let before = METRICS.db_batches.get();
        let mut jobs = Vec::new();
        for i in 0..200i64 {
            let w = db.writer.clone();
            jobs.push(tokio::spawn(async move {
                w.write(move |conn, outbox| {
                    Box::pin(async move {
                        sqlx::query(
                            "INSERT INTO settings (key, value, updated_at) VALUES ($1, 'x', 0)",
                        )
                        .bind(format!("k{i}"))
                        .execute(&mut *conn)
                        .await?;
                        outbox.push(BusMessage::Everyone {
                            frame: Frame::Binary(vec![0u8].into()),
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
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM settings")
            .fetch_one(&db.read)
            .await
            .expect("count");
        assert_eq!(n, 199);
        let (k7,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM settings WHERE key = 'k7'")
            .fetch_one(&db.read)
            .await
            .expect("count");
        assert_eq!(k7, 0, "the failed job's write was rolled back");
        let mut published = 0;
        while events.try_recv().is_ok() {
            published += 1;
        }
        assert_eq!(published, 199, "only committed jobs publish");
    }
}
