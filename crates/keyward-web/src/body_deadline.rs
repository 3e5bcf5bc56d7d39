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
/// The most body bytes read ahead: the largest body any route takes (a form's 256 KiB; a
/// passkey's JSON is a few KiB), so no route buffers more than it could use.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// Whether the request may carry a body: over HTTP/1 the head announces one (a length other
/// than 0, or chunked); over HTTP/2 any stream with a payload may send DATA frames without
/// either header, so it is always read (an empty stream ends at once).
fn has_body(req: &ServiceRequest) -> bool {
    if matches!(req.parts().1, Payload::None) {
        return false;
    }
    if req.version() >= actix_web::http::Version::HTTP_2 {
        return true;
    }
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

/// The refusal, closing the connection (the unread rest of the body must never be read as
/// the next request). actix drops a hand-set `Connection` header; the head's type is kept.
fn refuse(status: StatusCode, message: &'static str) -> actix_web::HttpResponse {
    let mut resp = actix_web::HttpResponse::build(status).content_type("text/plain; charset=utf-8").body(message);
    resp.head_mut().set_connection_type(actix_web::http::ConnectionType::Close);
    resp
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

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::Version;
    use actix_web::test::TestRequest;

    /// An HTTP/2 stream may send DATA frames with neither `Content-Length` nor
    /// `Transfer-Encoding`: such a body is read within the deadline too (it was skipped).
    #[test]
    fn f20_an_http2_body_without_length_headers_is_read_within_the_deadline() {
        let mut h2 = TestRequest::post().version(Version::HTTP_2).set_payload("ten bytes!").to_srv_request();
        h2.headers_mut().remove(header::CONTENT_LENGTH);
        assert!(has_body(&h2), "an HTTP/2 stream with a payload and no length header");
        let mut h1 = TestRequest::get().version(Version::HTTP_11).to_srv_request();
        h1.headers_mut().remove(header::CONTENT_LENGTH);
        let _ = std::mem::replace(h1.parts_mut().1, Payload::None);
        assert!(!has_body(&h1), "an HTTP/1.1 GET without a body");
        let chunked = TestRequest::post().insert_header((header::TRANSFER_ENCODING, "chunked")).set_payload("x").to_srv_request();
        assert!(has_body(&chunked));
    }
}
