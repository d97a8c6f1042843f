//! Unknown routes and wrong methods, in OpenAI's error shape.

use http::Uri;

use crate::error::ApiError;

/// 404 for any unknown route.
pub async fn not_found(uri: Uri) -> ApiError {
    ApiError::NotFound {
        message: format!("no route for {}", uri.path()),
        code: "route_not_found",
    }
}

/// 405 for a known route with the wrong method.
pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
