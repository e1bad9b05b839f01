//! Who may read the dashboard: with no token, anyone who reaches a
//! loopback address (the server refuses other addresses, see
//! [`crate::Server::bind`]); with a token (`--token-file`), only requests
//! that carry it, as `Authorization: Bearer TOKEN` or in the cookie that a
//! one-time `?token=TOKEN` visit sets before redirecting to the same page
//! without it (so the token is not left in the address bar, history or
//! links). Tokens are compared in constant time and never logged.

use std::path::Path;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use percent_encoding::percent_decode_str;
use subtle::ConstantTimeEq;

use crate::error::DashboardError;

/// The cookie a `?token=` visit sets.
pub const COOKIE_NAME: &str = "wrun_token";

/// The shared secret of `--token-file`: the file's first line, trimmed.
#[derive(Clone)]
pub struct Token(Arc<str>);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(..)")
    }
}

impl Token {
    /// The token in `path`: its first line without surrounding whitespace.
    ///
    /// # Errors
    ///
    /// [`DashboardError::TokenFile`] when it cannot be read;
    /// [`DashboardError::BadToken`] when that line is empty, or holds
    /// characters a cookie or a header cannot carry (anything but visible
    /// ASCII).
    pub fn read(path: &Path) -> Result<Token, DashboardError> {
        let text = std::fs::read_to_string(path).map_err(|source| DashboardError::TokenFile {
            path: path.to_owned(),
            source,
        })?;
        let token = text.lines().next().unwrap_or("").trim();
        let bad = |problem| DashboardError::BadToken {
            path: path.to_owned(),
            problem,
        };
        if token.is_empty() {
            return Err(bad("is empty"));
        }
        if !token.bytes().all(|b| b.is_ascii_graphic() && b != b';') {
            return Err(bad("holds characters other than visible ASCII (or a ';')"));
        }
        Ok(Token(token.into()))
    }

    fn matches(&self, given: &str) -> bool {
        self.0.as_bytes().ct_eq(given.as_bytes()).into()
    }
}

/// Middleware: let a request through when no token is set or it carries
/// the token; answer a `?token=` visit with the cookie and a redirect to
/// the same address without the token; anything else gets 401.
pub(crate) async fn check(
    State(token): State<Option<Token>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(token) = token else {
        return next.run(request).await;
    };
    if let Some(given) = query_token(request.uri()) {
        if !token.matches(&given) {
            return unauthorized();
        }
        let cookie = format!("{COOKIE_NAME}={given}; HttpOnly; SameSite=Strict; Path=/");
        let clean = without_token(request.uri());
        return (
            StatusCode::SEE_OTHER,
            [(LOCATION, clean), (SET_COOKIE, cookie)],
        )
            .into_response();
    }
    if carried(request.headers()).is_some_and(|given| token.matches(given)) {
        return next.run(request).await;
    }
    unauthorized()
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(CONTENT_TYPE, "text/plain; charset=utf-8")],
        "unauthorized: this dashboard needs its token (the header \
         `Authorization: Bearer TOKEN`, or open it once as /?token=TOKEN)\n",
    )
        .into_response()
}

/// The token of the `Authorization: Bearer` header, else of the cookie.
fn carried(headers: &HeaderMap) -> Option<&str> {
    let bearer = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    bearer.or_else(|| {
        headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .find_map(|pair| pair.trim().strip_prefix(COOKIE_NAME)?.strip_prefix('='))
    })
}

/// The value of the query's `token` parameter, if any, percent-decoded
/// (`%2B` is `+`; a `+` stays a `+`, since no token holds a space).
fn query_token(uri: &Uri) -> Option<String> {
    uri.query()?
        .split('&')
        .find_map(|pair| pair.strip_prefix("token="))
        .map(|value| percent_decode_str(value).decode_utf8_lossy().into_owned())
}

/// `uri`'s path and query without its `token` parameter.
fn without_token(uri: &Uri) -> String {
    let rest: Vec<&str> = uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|pair| !pair.is_empty() && !pair.starts_with("token="))
        .collect();
    match rest.is_empty() {
        true => uri.path().to_owned(),
        false => format!("{}?{}", uri.path(), rest.join("&")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_leaves_the_address_and_nothing_else_does() {
        let uri: Uri = "/job?token=s3cret&x=1".parse().unwrap();
        assert_eq!(query_token(&uri).as_deref(), Some("s3cret"));
        assert_eq!(without_token(&uri), "/job?x=1");
        assert_eq!(without_token(&"/?token=a".parse().unwrap()), "/");
    }

    #[test]
    fn a_token_in_the_query_is_percent_decoded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "a+b/c=d%e\n").unwrap();
        let token = Token::read(&path).unwrap();
        for query in [
            "/?token=a%2Bb%2Fc%3Dd%25e",
            "/?x=1&token=a+b/c=d%25e",
            "/?token=a%2bb/c=d%e&x=1",
        ] {
            let given = query_token(&query.parse().unwrap()).unwrap();
            assert!(token.matches(&given), "{query} gave {given:?}");
        }
        let given = query_token(&"/?token=a%20b/c=d%25e".parse().unwrap()).unwrap();
        assert!(!token.matches(&given));
    }

    #[test]
    fn the_header_wins_over_the_cookie_and_either_is_read() {
        let mut headers = HeaderMap::new();
        headers.insert(COOKIE, "a=b; wrun_token=fromcookie".parse().unwrap());
        assert_eq!(carried(&headers), Some("fromcookie"));
        headers.insert(AUTHORIZATION, "Bearer fromheader".parse().unwrap());
        assert_eq!(carried(&headers), Some("fromheader"));
    }

    #[test]
    fn a_token_file_must_hold_a_token() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "  \n").unwrap();
        assert!(matches!(
            Token::read(&path),
            Err(DashboardError::BadToken { .. })
        ));
        std::fs::write(&path, "abc def\n").unwrap();
        assert!(matches!(
            Token::read(&path),
            Err(DashboardError::BadToken { .. })
        ));
        std::fs::write(&path, " tok3n \nignored").unwrap();
        let token = Token::read(&path).unwrap();
        assert!(token.matches("tok3n"));
        assert!(!token.matches("tok3"));
        assert_eq!(format!("{token:?}"), "Token(..)");
    }
}
