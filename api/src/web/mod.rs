//! The web app: `web/apps/web`'s static export, served under `/app/` from the api's own origin
//! (so the app reaches the API and `/ws` without CORS), with `/` leading there. The API's paths
//! stay where clients and SDKs know them; nothing of the app lives outside `/app/`.

use std::path::{Path, PathBuf};

use poem::http::{header, Method, StatusCode};
use poem::{Body, Request, Response};

use crate::error::ApiError;

/// Where the app lives on our origin (the export's `basePath`).
pub const APP_PREFIX: &str = "/app";

/// Every page's policy: scripts, styles, connections (`/ws` included) and media from our origin
/// only, plus the SFU's signaling WebSocket (`sfu_origin`, see [`sfu_origin`]); `'wasm-unsafe-eval'`
/// lets the client core's WebAssembly compile, and `blob:` lets a photo or video decrypted in the
/// browser be shown. No inline script or style runs.
pub fn page_csp(sfu_origin: Option<&str>) -> String {
    let sfu = sfu_origin.map(|origin| format!(" {origin}")).unwrap_or_default();
    format!(
        "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; \
         img-src 'self' blob:; media-src 'self' blob:; connect-src 'self'{sfu}; font-src 'self'; \
         manifest-src 'self'; worker-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
}

/// The `ws://` or `wss://` origin of the SFU's signaling URL, if it is a plain one (anything else
/// stays out of the policy rather than widening it).
pub fn sfu_origin(sfu_url: &str) -> Option<String> {
    let (scheme, rest) = sfu_url.split_once("://")?;
    if scheme != "ws" && scheme != "wss" {
        return None;
    }
    let authority = rest.split('/').next().unwrap_or_default();
    let plain = !authority.is_empty()
        && authority.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
    plain.then(|| format!("{scheme}://{authority}"))
}

/// What a path under `/app` names in the export.
#[derive(Debug, PartialEq, Eq)]
pub enum Resolved {
    File(PathBuf),
    /// A page asked for without its trailing slash (the export has `chat/index.html`).
    Redirect(String),
    /// Nothing there: the export's own 404 page, when it has one.
    Missing,
}

/// Whether `path` is a regular file (asked without blocking the runtime's thread).
async fn is_file(path: &Path) -> bool {
    tokio::fs::metadata(path).await.is_ok_and(|metadata| metadata.is_file())
}

/// Maps `path` (starting with `/app`) to a file under `root`; never outside it.
pub async fn resolve(root: &Path, path: &str) -> Resolved {
    let Some(rest) = path.strip_prefix(APP_PREFIX) else { return Resolved::Missing };
    if rest.is_empty() {
        return Resolved::Redirect(format!("{APP_PREFIX}/"));
    }
    let Some(rest) = rest.strip_prefix('/') else { return Resolved::Missing };
    let mut file = root.to_path_buf();
    let segments: Vec<&str> = rest.split('/').collect();
    for (i, segment) in segments.iter().enumerate() {
        let last = i + 1 == segments.len();
        let plain = !segment.is_empty()
            && *segment != "."
            && *segment != ".."
            && !segment.contains(['\\', '\0', '%'])
            && !segment.starts_with('.');
        // Only the last segment may be empty (a trailing slash: the directory's index).
        let allowed = plain || (last && segment.is_empty());
        if !allowed {
            return Resolved::Missing;
        }
        file.push(segment);
    }
    if rest.is_empty() || rest.ends_with('/') {
        file.push("index.html");
    } else if !is_file(&file).await && is_file(&file.join("index.html")).await {
        return Resolved::Redirect(format!("{path}/"));
    }
    if is_file(&file).await {
        Resolved::File(file)
    } else {
        Resolved::Missing
    }
}

fn content_type(file: &Path) -> &'static str {
    match file.extension().and_then(|e| e.to_str()).unwrap_or_default() {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "wasm" => "application/wasm",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "webp" => "image/webp",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        "webmanifest" => "application/manifest+json",
        _ => "application/octet-stream",
    }
}

fn accepts_gzip(req: &Request) -> bool {
    req.header(header::ACCEPT_ENCODING).is_some_and(|accepted| {
        accepted.split(',').any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            parts.next() == Some("gzip") && parts.all(|p| p != "q=0" && p != "q=0.0")
        })
    })
}

/// Answers a request for `/` or anything under `/app` from the export in `root`.
pub async fn serve(req: &Request, root: &Path, csp: &str) -> Result<Response, ApiError> {
    let path = req.uri().path();
    if path == "/" {
        return Ok(redirect(&format!("{APP_PREFIX}/")));
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return Err(ApiError::MethodNotAllowed { allow: "GET, HEAD" });
    }
    let (file, status) = match resolve(root, path).await {
        Resolved::File(file) => (file, StatusCode::OK),
        Resolved::Redirect(to) => return Ok(redirect(&to)),
        Resolved::Missing => {
            let page = root.join("404.html");
            if !is_file(&page).await {
                return Err(ApiError::NotFound);
            }
            (page, StatusCode::NOT_FOUND)
        }
    };
    let kind = content_type(&file);
    // The build writes a gzip copy beside each compressible file.
    let gzipped = PathBuf::from(format!("{}.gz", file.display()));
    let (body_file, encoding) =
        if accepts_gzip(req) && is_file(&gzipped).await { (gzipped, Some("gzip")) } else { (file.clone(), None) };
    let opened = tokio::fs::File::open(&body_file).await.map_err(ApiError::internal)?;
    let length = opened.metadata().await.map_err(ApiError::internal)?.len();
    let immutable = path.starts_with(&format!("{APP_PREFIX}/_next/static/"));
    let mut response = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, kind)
        .header(header::CONTENT_LENGTH, length)
        .header(header::VARY, "Accept-Encoding")
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .header(header::CACHE_CONTROL, if immutable { "public, max-age=31536000, immutable" } else { "no-cache" });
    if let Some(encoding) = encoding {
        response = response.header(header::CONTENT_ENCODING, encoding);
    }
    if kind.starts_with("text/html") {
        response = response
            .header(header::CONTENT_SECURITY_POLICY, csp)
            .header(header::REFERRER_POLICY, "no-referrer")
            .header("Cross-Origin-Opener-Policy", "same-origin");
    }
    let body = if req.method() == Method::HEAD { Body::empty() } else { Body::from_async_read(opened) };
    Ok(response.body(body))
}

fn redirect(to: &str) -> Response {
    Response::builder().status(StatusCode::FOUND).header(header::LOCATION, to).body(Body::empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn export() -> PathBuf {
        let root = std::env::temp_dir().join(format!("parley-web-{}", uuid::Uuid::new_v4()));
        for file in ["index.html", "404.html", "chat/index.html", "_next/static/chunks/app.js", ".env"] {
            let path = root.join(file);
            std::fs::create_dir_all(path.parent().unwrap_or(&root)).expect("dir");
            std::fs::write(path, file).expect("file");
        }
        root
    }

    #[tokio::test]
    async fn paths_map_to_the_export_and_never_outside_it() {
        let root = export();
        assert_eq!(resolve(&root, "/app").await, Resolved::Redirect("/app/".into()));
        assert_eq!(resolve(&root, "/app/").await, Resolved::File(root.join("index.html")));
        assert_eq!(resolve(&root, "/app/chat/").await, Resolved::File(root.join("chat/index.html")));
        assert_eq!(resolve(&root, "/app/chat").await, Resolved::Redirect("/app/chat/".into()));
        assert_eq!(
            resolve(&root, "/app/_next/static/chunks/app.js").await,
            Resolved::File(root.join("_next/static/chunks/app.js"))
        );
        for outside in [
            "/app/../Cargo.toml",
            "/app/chat/../../x",
            "/app/%2e%2e/x",
            "/app//etc/passwd",
            "/app/.env",
            "/app/chat\\..\\x",
            "/application",
            "/app/nothing-here",
        ] {
            assert_eq!(resolve(&root, outside).await, Resolved::Missing, "{outside}");
        }
        std::fs::remove_dir_all(root).ok();
    }

    #[test]
    fn the_policy_lets_pages_reach_the_sfu_and_nothing_else() {
        assert_eq!(sfu_origin("ws://127.0.0.1:8081/rtc").as_deref(), Some("ws://127.0.0.1:8081"));
        assert_eq!(sfu_origin("wss://sfu.example.com/rtc").as_deref(), Some("wss://sfu.example.com"));
        assert_eq!(sfu_origin("wss://[::1]:9/rtc").as_deref(), Some("wss://[::1]:9"));
        for odd in ["http://x/rtc", "ws://a b/rtc", "ws://x;script-src *", "nonsense", "ws:///rtc"] {
            assert_eq!(sfu_origin(odd), None, "{odd}");
        }
        let csp = page_csp(sfu_origin("ws://127.0.0.1:8081/rtc").as_deref());
        assert!(csp.contains("connect-src 'self' ws://127.0.0.1:8081;"), "{csp}");
        assert!(page_csp(None).contains("connect-src 'self';"));
    }
}
