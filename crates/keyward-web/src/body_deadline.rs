//! Reads every request body within a deadline (issue 14, finding 20). actix's
//! `client_request_timeout` bounds only the head: a client that sent `Content-Length: 1000`
//! and ten bytes held its connection (and a worker's attention) forever. This middleware
//! reads the whole body first, within [`BODY_READ_TIMEOUT`], and hands the handler the
//! buffered bytes; a body that stalls gets 408 and the connection is closed.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::{StatusCode, header};
use actix_web::middleware::Next;
use actix_web::web::{Bytes, BytesMut};
use futures_util::StreamExt;
use std::time::Duration;

/// The longest a request body may take to arrive, from the end of the head.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// The most body bytes read ahead (the JSON extractor's own limit; forms stop at 256 KiB).
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

/// Whether the head announces a body (a length other than 0, or chunked).
fn has_body(req: &ServiceRequest) -> bool {
    let length = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok());
    req.headers().contains_key(header::TRANSFER_ENCODING) || length.is_some_and(|l| l.trim() != "0")
}

async fn read_all(mut payload: Payload) -> Result<Bytes, PayloadError> {
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk?;
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(PayloadError::Overflow);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

fn refuse(status: StatusCode, message: &'static str) -> actix_web::HttpResponse {
    actix_web::HttpResponse::build(status)
        .insert_header((header::CONNECTION, "close"))
        .content_type("text/plain; charset=utf-8")
        .body(message)
}

/// Buffers the body within [`BODY_READ_TIMEOUT`]: 408 when it stalls, 413 past
/// [`MAX_BODY_BYTES`], 400 when it breaks off; otherwise the handler reads the buffered bytes.
pub async fn read_body_within_deadline(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    if !has_body(&req) {
        return Ok(next.call(req).await?.map_into_left_body());
    }
    let payload = std::mem::replace(req.parts_mut().1, Payload::None);
    let refused = match actix_web::rt::time::timeout(BODY_READ_TIMEOUT, read_all(payload)).await {
        Ok(Ok(body)) => {
            req.set_payload(Payload::from(body));
            return Ok(next.call(req).await?.map_into_left_body());
        }
        Err(_) => refuse(StatusCode::REQUEST_TIMEOUT, "The request body did not arrive in time. Send the form again."),
        Ok(Err(PayloadError::Overflow)) => refuse(StatusCode::PAYLOAD_TOO_LARGE, "This request is too large."),
        Ok(Err(_)) => refuse(StatusCode::BAD_REQUEST, "The request body is malformed or incomplete."),
    };
    tracing::debug!(status = refused.status().as_u16(), "request body refused");
    Ok(req.into_response(refused).map_into_right_body())
}
