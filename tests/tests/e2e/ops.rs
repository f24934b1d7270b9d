use anyhow::Result;
use parley_tests::Stack;

#[tokio::test]
async fn health_metrics_spec_docs_and_keys_are_served() -> Result<()> {
    let stack = Stack::start().await?;
    let (status, health) = stack.get("/healthz", None).await?;
    assert_eq!(status, 200);
    assert_eq!((health["postgres"].as_bool(), health["nats"].as_bool()), (Some(true), Some(true)));

    let (status, spec) = stack.get("/openapi.json", None).await?;
    assert_eq!(status, 200);
    assert!(spec["paths"]["/auth/register"]["post"].is_object());

    let docs = stack.http.get(stack.url("/docs")).send().await?;
    assert_eq!(docs.status().as_u16(), 200);
    assert!(docs.text().await?.contains("swagger"));

    let (status, jwks) = stack.get("/.well-known/jwks.json", None).await?;
    assert_eq!(status, 200);
    assert_eq!(jwks["keys"][0]["alg"], "EdDSA");

    // After some traffic the request counter carries the operation.
    stack.get("/healthz", None).await?;
    let metrics = stack.http.get(stack.url("/metrics")).send().await?.text().await?;
    assert!(metrics.contains("http_server_requests"), "{metrics}");
    assert!(metrics.contains("operation=\"health\""), "{metrics}");
    Ok(())
}
