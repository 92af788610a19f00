//! Uploads service: files streamed to disk under the data directory, content type sniffed
//! from the bytes (never taken from the client), served to room members only. Raster images
//! are served inline; everything else as an attachment under a sandboxing CSP. Deleting the
//! message deletes the file. Owns the table `uploads` and the `uploads/` directory.
//!
//! An upload declared encrypted (`?encrypted=true`: the client encrypted the file, its key
//! travels inside an encrypted message) is stored as `application/octet-stream` under a neutral
//! name, never sniffed or served inline. An encrypted room takes only such uploads; an ordinary
//! room none.

use std::collections::HashMap;
use std::path::PathBuf;

use sotto_api::rest::UploadInfo;
use sotto_api::{ErrorCode, MessageId, RoomId, UploadId, UserId};
use tokio::io::AsyncWriteExt;

use crate::error::{ApiError, ApiResult};
use crate::secrets::random_hex;
use crate::services::accounts::Caller;
use crate::services::room_keys;
use crate::services::rooms::Rooms;
use crate::services::settings::Settings;
use crate::storage::{Db, NewUpload, Tx, now_ms};

/// The stored name of every encrypted upload.
pub const ENCRYPTED_NAME: &str = "encrypted.bin";

/// Only raster images are ever shown inline.
pub fn is_inline(content_type: &str) -> bool {
    matches!(
        content_type,
        "image/png" | "image/jpeg" | "image/gif" | "image/webp"
    )
}

/// Content type from the first bytes of a file.
pub fn sniff(head: &[u8]) -> &'static str {
    if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        "image/png"
    } else if head.starts_with(&[0xff, 0xd8, 0xff]) {
        "image/jpeg"
    } else if head.starts_with(b"GIF87a") || head.starts_with(b"GIF89a") {
        "image/gif"
    } else if head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WEBP" {
        "image/webp"
    } else if head.starts_with(b"%PDF-") {
        "application/pdf"
    } else if !head.contains(&0) && std::str::from_utf8(head).is_ok_and(|s| !looks_like_markup(s)) {
        "text/plain; charset=utf-8"
    } else {
        // Markup (HTML, SVG, XML) and unknown binaries: never anything a browser renders.
        "application/octet-stream"
    }
}

fn looks_like_markup(s: &str) -> bool {
    let l = s.to_ascii_lowercase();
    [
        "<html",
        "<!doctype",
        "<svg",
        "<script",
        "<?xml",
        "<body",
        "<iframe",
    ]
    .iter()
    .any(|m| l.contains(m))
}

/// A file name safe to store and to put in a `Content-Disposition` header.
pub fn sanitize_filename(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("");
    let clean: String = base
        .chars()
        .filter(|c| !c.is_control())
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._- ()".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(100)
        .collect();
    let clean = clean
        .trim_matches(|c: char| c == '.' || c == ' ')
        .to_string();
    if clean.is_empty() {
        "file".to_string()
    } else {
        clean
    }
}

/// An upload being received: bytes go to a temporary file, the size is capped. Dropping a
/// sink that was not completed (an error, a client that went away, a cancelled request)
/// removes its temporary file.
pub struct UploadSink {
    file: tokio::fs::File,
    tmp: PathBuf,
    head: Vec<u8>,
    size: u64,
    max: u64,
    /// Declared client-encrypted: never sniffed.
    encrypted: bool,
    /// Set once the file has been moved into place.
    completed: bool,
}

impl Drop for UploadSink {
    fn drop(&mut self) {
        if !self.completed {
            // Synchronous, but an unlink is cheap; Drop cannot await.
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

impl UploadSink {
    /// Appends a chunk; `payload_too_large` (and the temp file removed) past the limit.
    pub async fn write(&mut self, chunk: &[u8]) -> ApiResult<()> {
        self.size += chunk.len() as u64;
        if self.size > self.max {
            // The caller drops the sink, which removes the temp file.
            return Err(ApiError::new(
                ErrorCode::PayloadTooLarge,
                format!("uploads are at most {} bytes", self.max),
            ));
        }
        if self.head.len() < 512 {
            let take = (512 - self.head.len()).min(chunk.len());
            self.head.extend_from_slice(&chunk[..take]);
        }
        self.file.write_all(chunk).await?;
        Ok(())
    }

    /// Gives up (the temp file is removed when the sink is dropped).
    pub async fn abort(self) {
        drop(self);
    }
}

/// The uploads service.
#[derive(Clone)]
pub struct Uploads {
    db: Db,
    rooms: Rooms,
    settings: Settings,
}

impl Uploads {
    /// Builds the service.
    pub fn new(db: Db, rooms: Rooms, settings: Settings) -> Self {
        Uploads {
            db,
            rooms,
            settings,
        }
    }

    /// Starts an upload into `room` (the caller must be a member; `encrypted` must match the
    /// room's encryption).
    pub async fn begin(
        &self,
        caller: &Caller,
        room: RoomId,
        encrypted: bool,
    ) -> ApiResult<UploadSink> {
        let r = self.rooms.get(caller, room).await?;
        let policy = crate::storage::RoomPolicy {
            encrypted: r.encrypted,
            epoch: r.epoch,
            key_id: r.key_id,
            key_epoch: r.key_epoch,
        };
        room_keys::check_upload(&policy, encrypted)?;
        let tmp = self.db.uploads_dir().join("tmp").join(random_hex(16));
        let file = tokio::fs::File::create(&tmp).await?;
        Ok(UploadSink {
            file,
            tmp,
            head: Vec::new(),
            size: 0,
            max: self.settings.int("uploads.max_bytes"),
            encrypted,
            completed: false,
        })
    }

    /// Completes an upload: sniffs, moves it into place, records it.
    pub async fn finish(
        &self,
        caller: &Caller,
        room: RoomId,
        mut sink: UploadSink,
        filename: &str,
    ) -> ApiResult<UploadInfo> {
        sink.file.flush().await?;
        sink.file.sync_all().await?;
        let encrypted = sink.encrypted;
        let content_type = if encrypted {
            "application/octet-stream"
        } else {
            sniff(&sink.head)
        };
        let name = random_hex(16);
        let dest = self.db.uploads_dir().join(&name);
        tokio::fs::rename(&sink.tmp, &dest).await?;
        // Moved into place: from here on a failure removes `dest`, not the temp file.
        sink.completed = true;
        let size = sink.size as i64;
        drop(sink);
        // An encrypted file's name travels inside the encrypted message; a careless client's
        // real name is not kept here.
        let filename = if encrypted {
            ENCRYPTED_NAME.to_string()
        } else {
            sanitize_filename(filename)
        };
        let uid = caller.user_id;
        let (stored, fname) = (name.clone(), filename.clone());
        let res = self
            .db
            .write(move |tx, _| {
                Box::pin(async move {
                    tx.insert_upload(NewUpload {
                        room,
                        uploader: uid,
                        filename: &fname,
                        content_type,
                        size,
                        storage_name: &stored,
                        encrypted,
                        now: now_ms(),
                    })
                    .await
                })
            })
            .await;
        match res {
            Ok(id) => Ok(UploadInfo {
                id,
                room_id: room,
                filename,
                content_type: content_type.to_string(),
                size,
                inline: !encrypted && is_inline(content_type),
                encrypted,
            }),
            Err(e) => {
                let _ = tokio::fs::remove_file(&dest).await;
                Err(e)
            }
        }
    }

    /// Looks up an upload the caller may read (a member of its room, and the uploader while it
    /// is not attached to a message yet); returns it and its path on disk.
    pub async fn open(&self, caller: &Caller, id: UploadId) -> ApiResult<(UploadInfo, PathBuf)> {
        let rec = self
            .db
            .upload(id)
            .await?
            .ok_or_else(|| ApiError::not_found("upload"))?;
        if !self
            .rooms
            .is_member(rec.info.room_id, caller.user_id)
            .await?
        {
            return Err(ApiError::not_found("upload"));
        }
        // Until it is attached to a message, an upload is the uploader's draft: the other
        // members learn of it only when it is sent.
        if rec.message_id.is_none() && rec.uploader_id != caller.user_id {
            return Err(ApiError::not_found("upload"));
        }
        let path = self.db.uploads_dir().join(&rec.storage_name);
        Ok((rec.info, path))
    }
}

/// Attaches an upload to a new message (inside the message's writer job). The upload must be
/// the author's, in the same room, and not attached yet; in an encrypted room it must be
/// declared encrypted (`e2e_plaintext_refused`).
pub async fn attach(
    tx: &mut dyn Tx,
    upload: UploadId,
    room: RoomId,
    author: UserId,
    message: MessageId,
) -> ApiResult<UploadInfo> {
    match tx.upload(upload).await? {
        Some(rec)
            if rec.info.room_id == room
                && rec.uploader_id == author
                && rec.message_id.is_none() =>
        {
            let policy = room_keys::policy(tx, room).await?;
            room_keys::check_attachment(&policy, rec.info.encrypted)?;
            tx.attach_upload(upload, message).await?;
            Ok(rec.info)
        }
        _ => Err(ApiError::not_found("upload")),
    }
}

/// Attachments of the given messages.
pub async fn for_messages(db: &Db, ids: &[MessageId]) -> ApiResult<HashMap<MessageId, UploadInfo>> {
    let recs = db.uploads_of_messages(ids).await?;
    Ok(recs
        .into_iter()
        .filter_map(|r| r.message_id.map(|m| (m, r.info)))
        .collect())
}

/// Deletes uploads never attached to a message within `age`, and stale temporary files of
/// interrupted uploads. Returns how many uploads were removed.
pub async fn remove_orphans(db: &Db, age: std::time::Duration) -> ApiResult<usize> {
    let cutoff = now_ms() - age.as_millis() as i64;
    let names = db
        .write(move |tx, _| tx.remove_orphan_uploads(cutoff))
        .await?;
    let n = names.len();
    remove_files(db, names).await;
    if let Ok(mut dir) = tokio::fs::read_dir(db.uploads_dir().join("tmp")).await {
        while let Ok(Some(entry)) = dir.next_entry().await {
            let stale = entry
                .metadata()
                .await
                .ok()
                .and_then(|m| m.modified().ok())
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|e| e > age);
            if stale {
                let _ = tokio::fs::remove_file(entry.path()).await;
            }
        }
    }
    Ok(n)
}

/// Deletes files of removed uploads (after the commit that removed their rows).
pub async fn remove_files(db: &Db, names: Vec<String>) {
    for n in names {
        if let Err(e) = tokio::fs::remove_file(db.uploads_dir().join(&n)).await {
            tracing::warn!(error = %e, "could not remove an upload file");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffing() {
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\nrest"), "image/png");
        assert_eq!(sniff(b"<svg xmlns=...>"), "application/octet-stream");
        assert_eq!(sniff(b"<!DOCTYPE html><html>"), "application/octet-stream");
        assert_eq!(sniff(b"just words"), "text/plain; charset=utf-8");
        assert_eq!(sniff(&[0, 1, 2]), "application/octet-stream");
        assert!(is_inline("image/png"));
        assert!(!is_inline("image/svg+xml"));
    }

    async fn sink_in(dir: &std::path::Path, max: u64) -> UploadSink {
        let tmp = dir.join("partial");
        UploadSink {
            file: tokio::fs::File::create(&tmp).await.unwrap(),
            tmp,
            head: Vec::new(),
            size: 0,
            max,
            encrypted: false,
            completed: false,
        }
    }

    #[tokio::test]
    async fn an_unfinished_upload_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let tmp = dir.path().join("partial");
        // Dropped mid-way (an error on the way, a cancelled request).
        let mut sink = sink_in(dir.path(), 100).await;
        sink.write(b"some bytes").await.unwrap();
        assert!(tmp.exists());
        drop(sink);
        assert!(
            !tmp.exists(),
            "dropping an unfinished sink removes its temp file"
        );
        // Over the limit.
        let mut sink = sink_in(dir.path(), 4).await;
        assert!(sink.write(b"too many bytes").await.is_err());
        drop(sink);
        assert!(!tmp.exists());
        // Completed: the file (moved into place) is left alone.
        let mut sink = sink_in(dir.path(), 100).await;
        sink.completed = true;
        drop(sink);
        assert!(tmp.exists());
    }

    #[test]
    fn filenames() {
        assert_eq!(sanitize_filename("../../etc/passwd"), "passwd");
        assert_eq!(sanitize_filename("a\"b;c.txt"), "a_b_c.txt");
        assert_eq!(sanitize_filename(".."), "file");
    }
}
