use kit::testing::metric;
use reqwest::StatusCode;

use crate::helpers::spawn_stack;

const LIST: &str = "/content.v1.ContentService/ListArticles";

async fn served(http: &reqwest::Client, admin: std::net::SocketAddr) -> f64 {
    let text = http
        .get(format!("http://{admin}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    metric(&text, "grpc_server_requests_total", &[("method", LIST)])
}

#[tokio::test]
async fn two_content_instances_share_the_load_and_a_stopped_one_gets_none() {
    let mut stack = spawn_stack().await;
    stack.add_content_instance().await;

    for _ in 0..60 {
        assert_eq!(stack.get("/api/v1/articles").await.status(), StatusCode::OK);
    }
    let first = served(&stack.http, stack.content[0].admin_addr).await;
    let second = served(&stack.http, stack.content[1].admin_addr).await;
    assert_eq!(first + second, 60.0);
    assert!(
        first >= 10.0 && second >= 10.0,
        "both used: {first} / {second}"
    );

    // SIGTERM one: it leaves etcd first, so no request may fail.
    let leaving = stack.content.remove(0);
    let left_admin = leaving.admin_addr;
    leaving.stop().await;
    stack.wait_for_instances("content", 1).await;
    let remaining_before = served(&stack.http, stack.content[0].admin_addr).await;
    for _ in 0..30 {
        assert_eq!(stack.get("/api/v1/articles").await.status(), StatusCode::OK);
    }
    let remaining_after = served(&stack.http, stack.content[0].admin_addr).await;
    assert_eq!(remaining_after - remaining_before, 30.0);
    assert!(
        stack
            .http
            .get(format!("http://{left_admin}/metrics"))
            .send()
            .await
            .is_err()
    );
    stack.stop().await;
}
