//! Upload and download handlers. The body is streamed to disk chunk by chunk, never held whole.

use axum::Json;
use axum::body::Body;
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use sotto_api::rest::UploadInfo;
use sotto_api::{ErrorCode, RoomId, UploadId};
use tokio::io::AsyncReadExt;

use super::extract::{ApiPath, ApiQuery, Auth};
use crate::app::App;
use crate::error::{ApiError, ApiResult};

fn multipart_error(e: axum::extract::multipart::MultipartError) -> ApiError {
    if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(ErrorCode::PayloadTooLarge, "the upload is too large")
    } else {
        ApiError::new(ErrorCode::InvalidInput, "malformed multipart body")
    }
}

/// `?encrypted=true` declares the file client-encrypted.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct UploadQuery {
    #[serde(default)]
    encrypted: bool,
}

pub(super) async fn upload(
    State(app): State<App>,
    Auth(c): Auth,
    ApiPath(room): ApiPath<RoomId>,
    ApiQuery(q): ApiQuery<UploadQuery>,
    req: Request,
) -> ApiResult<Json<UploadInfo>> {
    let mut form = Multipart::from_request(req, &app).await.map_err(|_| {
        ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "expected multipart/form-data",
        )
    })?;
    while let Some(mut field) = form.next_field().await.map_err(multipart_error)? {
        if field.name() != Some("file") {
            continue;
        }
        let filename = field.file_name().unwrap_or("file").to_string();
        let mut sink = app.uploads.begin(&c, room, q.encrypted).await?;
        loop {
            match field.chunk().await {
                Ok(Some(chunk)) => sink.write(&chunk).await?,
                Ok(None) => break,
                Err(e) => {
                    sink.abort().await;
                    return Err(multipart_error(e));
                }
            }
        }
        return app
            .uploads
            .finish(&c, room, sink, &filename)
            .await
            .map(Json);
    }
    Err(ApiError::new(
        ErrorCode::MissingField,
        "no part named \"file\"",
    ))
}

pub(super) async fn download(
    State(app): State<App>,
    Auth(c): Auth,
    ApiPath(id): ApiPath<UploadId>,
) -> ApiResult<Response> {
    let (info, path) = app.uploads.open(&c, id).await?;
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(|_| ApiError::not_found("upload"))?;
    let stream = futures_util::stream::unfold(file, |mut f| async move {
        let mut buf = vec![0u8; 64 * 1024];
        match f.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, std::io::Error>(buf), f))
            }
            Err(e) => Some((Err(e), f)),
        }
    });
    let mut r = Body::from_stream(stream).into_response();
    let h = r.headers_mut();
    let ct = HeaderValue::from_str(&info.content_type)
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    h.insert(header::CONTENT_TYPE, ct);
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(info.size as u64));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    let disposition = if info.inline { "inline" } else { "attachment" };
    // The name is sanitised to a safe ASCII subset when stored.
    if let Ok(v) = HeaderValue::from_str(&format!("{disposition}; filename=\"{}\"", info.filename))
    {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    let csp = if info.inline {
        "default-src 'none'"
    } else {
        "sandbox; default-src 'none'"
    };
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(csp),
    );
    Ok(r)
}
