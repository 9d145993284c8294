//! Hostile clients: floods (rate limits, load shedding), slow clients,
//! forged tokens and the admin port without its credential.

use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine;
use gateway::limits::{Rate, Store};
use gateway::settings::Settings;
use hmac::Mac;
use kit::db::Backend;
use kit::testing::metric;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{ADMIN_TOKEN, TestStack, admin_basic, error_code, spawn_stack_with};

const MINUTE: Duration = Duration::from_secs(60);

/// A stack whose limits are on, with `burst` requests per class and no
/// refill within the test.
async fn limited(burst: u32, configure: impl FnOnce(&mut Settings)) -> TestStack {
    spawn_stack_with(Backend::MySql, |settings| {
        let rate = Rate::new(1, 60 * MINUTE, burst);
        settings.limits.enabled = true;
        settings.limits.sign_up = rate;
        settings.limits.login = rate;
        settings.limits.writes = rate;
        configure(settings);
    })
    .await
}

async fn sign_up(
    stack: &TestStack,
    username: &str,
    forwarded_for: Option<&str>,
) -> reqwest::Response {
    let mut request = stack.http.post(stack.url("/api/v1/users")).json(
        &json!({"username": username, "password": "correct horse", "display_name": username}),
    );
    if let Some(ip) = forwarded_for {
        request = request.header("x-forwarded-for", ip);
    }
    request.send().await.unwrap()
}

async fn log_in(stack: &TestStack, username: &str, password: &str) -> reqwest::Response {
    stack
        .post(
            "/api/v1/sessions",
            json!({"username": username, "password": password}),
            None,
        )
        .await
}

/// Asserts a 429 with the error body and a `Retry-After` of at least a
/// second; returns the `Retry-After`.
async fn assert_rate_limited(response: reqwest::Response) -> u64 {
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after >= 1);
    assert_eq!(
        error_code(response, StatusCode::TOO_MANY_REQUESTS).await,
        "rate_limited"
    );
    retry_after
}

#[tokio::test]
async fn a_login_flood_is_answered_429_with_retry_after() {
    let stack = limited(3, |_| {}).await;
    assert_eq!(
        sign_up(&stack, "flooded", None).await.status(),
        StatusCode::CREATED
    );
    // Wrong passwords count as much as right ones: the burst is spent by
    // guesses, and then the right password is refused too.
    for _ in 0..3 {
        let guess = log_in(&stack, "flooded", "guess guess").await;
        assert_eq!(guess.status(), StatusCode::UNAUTHORIZED);
    }
    let retry_after = assert_rate_limited(log_in(&stack, "flooded", "correct horse").await).await;
    // One login per hour comes back: the client is told to wait that long.
    assert!(retry_after > 60 * 59, "{retry_after}");
    let metrics = stack.gateway_metrics().await;
    assert_eq!(
        metric(
            &metrics,
            "http_server_rate_limited_requests_total",
            &[("class", "login")]
        ),
        1.0
    );
    stack.stop().await;
}

#[tokio::test]
async fn sign_ups_are_limited_per_socket_address_and_a_spoofed_forwarded_for_changes_nothing() {
    let stack = limited(1, |_| {}).await;
    assert_eq!(
        sign_up(&stack, "first1", Some("203.0.113.1"))
            .await
            .status(),
        StatusCode::CREATED
    );
    // No proxy is trusted: a different X-Forwarded-For is the same client.
    assert_rate_limited(sign_up(&stack, "second2", Some("203.0.113.2")).await).await;
    stack.stop().await;
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_limit() {
    let stack = limited(1, |settings| {
        settings.http.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
    })
    .await;
    assert_eq!(
        sign_up(&stack, "alpha1", Some("203.0.113.1"))
            .await
            .status(),
        StatusCode::CREATED
    );
    assert_rate_limited(sign_up(&stack, "alpha2", Some("203.0.113.1")).await).await;
    // What the client wrote left of the proxy's entry is not believed.
    assert_rate_limited(sign_up(&stack, "alpha3", Some("198.51.100.9, 203.0.113.1")).await).await;
    assert_eq!(
        sign_up(&stack, "beta1", Some("203.0.113.2")).await.status(),
        StatusCode::CREATED
    );
    stack.stop().await;
}

#[tokio::test]
async fn writes_are_limited_per_user_not_per_address() {
    // A burst of two: two sign-ups and two logins from this address.
    let stack = limited(2, |_| {}).await;
    let (_, alice) = stack.login_as("alice").await;
    let (_, bob) = stack.login_as("bob").await;
    let article = stack.publish(&alice, "One").await;
    let id = article["id"].as_i64().unwrap();
    stack.comment_on(&alice, id, "First!").await;
    let third = stack
        .post(
            &format!("/api/v1/articles/{id}/comments"),
            json!({"body": "Again"}),
            Some(&alice),
        )
        .await;
    assert_rate_limited(third).await;
    // Bob, from the same address, has his own allowance.
    stack.publish(&bob, "Two").await;
    stack.stop().await;
}

/// A second gateway on the same settings (etcd prefix, limits store).
async fn second_gateway(settings: Settings) -> (String, tokio::sync::oneshot::Sender<()>) {
    let server = gateway::startup::build(settings).await.unwrap();
    let base = format!("http://{}", server.local_addr());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server.run_until(async {
        let _ = stopped.await;
    }));
    for _ in 0..400 {
        if let Ok(ready) = reqwest::get(format!("{base}/readyz")).await
            && ready.status() == StatusCode::OK
        {
            return (base, stop);
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the second gateway never became ready");
}

#[tokio::test]
async fn with_the_redis_store_two_gateways_share_one_limit() {
    let prefix = format!("{}:", kit::testing::unique_name("limits"));
    let mut captured = None;
    let stack = limited(2, |settings| {
        settings.limits.store = Store::Redis;
        settings.limits.redis.url = Some(kit::testing::redis_url().into());
        settings.limits.redis.prefix = prefix.clone();
        settings.limits.redis.timeout = Duration::from_secs(2);
        captured = Some(settings.clone());
    })
    .await;
    let (other, stop_other) = second_gateway(captured.unwrap()).await;
    let login = |base: String| {
        let http = stack.http.clone();
        async move {
            http.post(format!("{base}/api/v1/sessions"))
                .json(&json!({"username": "nobody", "password": "whatever it is"}))
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(
        login(stack.base.clone()).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        login(other.clone()).await.status(),
        StatusCode::UNAUTHORIZED
    );
    // Each gateway has let one through: per instance, both would let more.
    assert_rate_limited(login(stack.base.clone()).await).await;
    assert_rate_limited(login(other.clone()).await).await;

    // The count lives under the test's own prefix.
    let client = redis::Client::open(kit::testing::redis_url()).unwrap();
    let mut redis = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(keys, [format!("{prefix}login:ip:127.0.0.1")]);
    let _: () = redis::cmd("DEL")
        .arg(&keys)
        .query_async(&mut redis)
        .await
        .unwrap();
    let _ = stop_other.send(());
    stack.stop().await;
}

#[tokio::test]
async fn when_redis_does_not_answer_each_gateway_limits_on_its_own() {
    let stack = limited(1, |settings| {
        settings.limits.store = Store::Redis;
        // Nothing listens there.
        settings.limits.redis.url = Some("redis://127.0.0.1:1/0".into());
    })
    .await;
    assert_eq!(
        log_in(&stack, "nobody", "whatever it is").await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_rate_limited(log_in(&stack, "nobody", "whatever it is").await).await;
    let metrics = stack.gateway_metrics().await;
    assert!(metric(&metrics, "rate_limit_store_errors_total", &[]) >= 2.0);
    stack.stop().await;
}

/// A raw connection to the gateway.
async fn connect(base: &str) -> TcpStream {
    let addr: SocketAddr = base.trim_start_matches("http://").parse().unwrap();
    TcpStream::connect(addr).await.unwrap()
}

/// Reads until the server closes the connection (or a generous bound, so a
/// broken server fails the test instead of hanging it); returns what came.
async fn read_until_closed(stream: &mut TcpStream) -> Option<String> {
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    let read_all = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => all.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), read_all)
        .await
        .ok()
        .map(|()| String::from_utf8_lossy(&all).into_owned())
}

#[tokio::test]
async fn past_the_in_flight_limit_requests_get_503_at_once_and_probes_still_answer() {
    let stack = spawn_stack_with(Backend::MySql, |settings| {
        settings.http.shed.max_in_flight = 1;
        settings.http.shed.retry_after = Duration::from_secs(2);
        // The held request below must not time out while the test runs.
        settings.http.reads.body = Duration::from_secs(600);
        settings.http.request_timeout = Duration::from_secs(600);
    })
    .await;
    // A request whose body never comes holds the one place.
    let mut holder = connect(&stack.base).await;
    holder
        .write_all(b"POST /api/v1/sessions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{")
        .await
        .unwrap();
    let mut shed = None;
    for _ in 0..200 {
        let response = stack.get("/api/v1/articles").await;
        if response.status() == StatusCode::SERVICE_UNAVAILABLE {
            shed = Some(response);
            break;
        }
        // The held request may not have reached the handler yet.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let shed = shed.expect("nothing was shed");
    assert_eq!(shed.headers()["retry-after"], "2");
    assert_eq!(
        error_code(shed, StatusCode::SERVICE_UNAVAILABLE).await,
        "overloaded"
    );
    assert_eq!(stack.get("/healthz").await.status(), StatusCode::OK);
    assert_eq!(stack.get("/readyz").await.status(), StatusCode::OK);

    // Once the held request ends, the place is free again.
    drop(holder);
    let mut admitted = false;
    for _ in 0..200 {
        if stack.get("/api/v1/articles").await.status() == StatusCode::OK {
            admitted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(admitted, "the place was never given back");
    let metrics = stack.gateway_metrics().await;
    let shed = metric(&metrics, "http_server_shed_requests_total", &[]);
    assert!(shed >= 1.0, "{shed}");
    // Shed requests show as 503s where alerts look.
    assert!(
        metric(
            &metrics,
            "http_server_requests_total",
            &[("route", "/api/v1/articles"), ("status", "503")]
        ) >= 1.0
    );
    stack.stop().await;
}

/// A stack that gives a client 300 ms to send its request headers.
async fn short_header_reads() -> TestStack {
    spawn_stack_with(Backend::MySql, |settings| {
        settings.http.reads.header = Duration::from_millis(300);
    })
    .await
}

#[tokio::test]
async fn a_client_dribbling_its_headers_is_disconnected() {
    let stack = short_header_reads().await;
    let mut slow = connect(&stack.base).await;
    slow.write_all(b"GET /api/v1/articles HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    // One header line every 50 ms: never done, never idle for long.
    let dribble = async {
        for n in 0..1200 {
            if slow
                .write_all(format!("x-slow-{n}: y\r\n").as_bytes())
                .await
                .is_err()
            {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    };
    assert!(dribble.await, "the server kept the connection open");
    assert_eq!(read_until_closed(&mut slow).await.as_deref(), Some(""));
    let metrics = stack.gateway_metrics().await;
    assert!(metric(&metrics, "http_server_slow_clients_total", &[]) >= 1.0);
    // Everyone else is served.
    assert_eq!(stack.get("/api/v1/articles").await.status(), StatusCode::OK);
    stack.stop().await;
}

#[tokio::test]
async fn a_client_that_connects_and_says_nothing_is_disconnected() {
    let stack = short_header_reads().await;
    let mut silent = connect(&stack.base).await;
    assert_eq!(read_until_closed(&mut silent).await.as_deref(), Some(""));
    let metrics = stack.gateway_metrics().await;
    assert!(metric(&metrics, "http_server_slow_clients_total", &[]) >= 1.0);
    stack.stop().await;
}

#[tokio::test]
async fn a_client_dribbling_its_body_gets_400_and_is_disconnected() {
    let stack = spawn_stack_with(Backend::MySql, |settings| {
        settings.http.reads.body = Duration::from_millis(300);
    })
    .await;
    let mut slow = connect(&stack.base).await;
    slow.write_all(b"POST /api/v1/sessions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 5000\r\n\r\n{")
        .await
        .unwrap();
    let (mut reader, mut writer) = slow.split();
    let dribble = async {
        for _ in 0..1200 {
            if writer.write_all(b" ").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let mut answer = Vec::new();
    let read = async {
        let mut buf = [0u8; 4096];
        loop {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
        }
    };
    // Reading ends when the server closes; the dribble is only the bound.
    tokio::select! {
        () = read => {}
        () = dribble => panic!("the server kept the connection open"),
    }
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("\"code\":\"bad_request\""), "{answer}");
    stack.stop().await;
}

/// A JWT with this header and these claims, HMAC-signed with `secret` by
/// `alg` (HS256 or HS512), or unsigned.
fn token(alg: &str, secret: &[u8], claims: &Value) -> String {
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let header = json!({"alg": alg, "typ": "JWT"});
    let signed = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let signature = match alg {
        "HS256" => {
            let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap();
            mac.update(signed.as_bytes());
            mac.finalize().into_bytes().to_vec()
        }
        "HS512" => {
            let mut mac = hmac::Hmac::<sha2::Sha512>::new_from_slice(secret).unwrap();
            mac.update(signed.as_bytes());
            mac.finalize().into_bytes().to_vec()
        }
        _ => Vec::new(),
    };
    format!("{signed}.{}", b64(&signature))
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test]
async fn forged_expired_and_malformed_tokens_are_401_with_the_error_body() {
    let mut secret = String::new();
    let stack = spawn_stack_with(Backend::MySql, |settings| {
        use secrecy::ExposeSecret;
        secret = settings.auth.jwt_secret.expose_secret().to_owned();
    })
    .await;
    let (user, genuine) = stack.login_as("target").await;
    let id = user["id"].as_i64().unwrap();
    let key = secret.as_bytes();
    let claims = |change: Value| {
        let mut claims = json!({
            "sub": id.to_string(), "name": "target", "iss": "newsroom",
            "iat": now(), "exp": now() + 3600,
        });
        for (k, v) in change.as_object().unwrap() {
            claims[k] = v.clone();
        }
        claims
    };
    // The genuine token and a hand-made twin work: the forgeries below
    // fail for their one difference only.
    let write = |auth: Option<String>| {
        let mut request = stack
            .http
            .post(stack.url("/api/v1/articles"))
            .json(&json!({"title": "Forged?", "body": "b"}));
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        request.send()
    };
    let bearer = |t: &str| Some(format!("Bearer {t}"));
    assert_eq!(
        write(bearer(&genuine)).await.unwrap().status(),
        StatusCode::CREATED
    );
    let twin = token("HS256", key, &claims(json!({})));
    assert_eq!(
        write(bearer(&twin)).await.unwrap().status(),
        StatusCode::CREATED
    );

    let attacks = [
        ("alg none", bearer(&token("none", b"", &claims(json!({}))))),
        (
            "wrong signature",
            bearer(&token("HS256", &[b'x'; 32], &claims(json!({})))),
        ),
        (
            "another algorithm",
            bearer(&token("HS512", key, &claims(json!({})))),
        ),
        (
            "expired",
            bearer(&token("HS256", key, &claims(json!({"exp": now() - 600})))),
        ),
        (
            "not yet valid",
            bearer(&token("HS256", key, &claims(json!({"nbf": now() + 600})))),
        ),
        (
            "wrong issuer",
            bearer(&token("HS256", key, &claims(json!({"iss": "evil"})))),
        ),
        (
            "no expiry",
            bearer(&token("HS256", key, &claims(json!({"exp": null})))),
        ),
        ("missing header", None),
        ("empty bearer", Some("Bearer ".to_owned())),
        ("another scheme", Some(format!("Basic {genuine}"))),
        ("not a JWT", bearer("a.b.c")),
        ("truncated", bearer(&genuine[..genuine.len() - 5])),
    ];
    for (attack, auth) in attacks {
        let response = write(auth).await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{attack}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "unauthenticated", "{attack}: {body}");
        assert!(body["error"]["message"].is_string(), "{attack}: {body}");
    }

    // A genuine token outlives its user: deleted, it writes nothing.
    let (_, doomed) = stack.login_as("doomed").await;
    let doomed_id: i64 = {
        let claims = doomed.split('.').nth(1).unwrap();
        let claims: Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(claims)
                .unwrap(),
        )
        .unwrap();
        claims["sub"].as_str().unwrap().parse().unwrap()
    };
    let mut db = <sqlx::MySqlConnection as sqlx::Connection>::connect(&stack.database_url("user"))
        .await
        .unwrap();
    sqlx::query("DELETE FROM users WHERE id = ?")
        .bind(doomed_id)
        .execute(&mut db)
        .await
        .unwrap();
    // As a real account deletion would, forget the cached user too.
    let client = redis::Client::open(kit::testing::redis_url()).unwrap();
    let mut redis = client.get_multiplexed_async_connection().await.unwrap();
    let cached = format!("{}users:{doomed_id}", stack.user_settings.cache.prefix);
    let _: () = redis::cmd("DEL")
        .arg(cached)
        .query_async(&mut redis)
        .await
        .unwrap();
    let response = write(bearer(&doomed)).await.unwrap();
    assert_eq!(
        error_code(response, StatusCode::UNAUTHORIZED).await,
        "unauthenticated"
    );
    stack.stop().await;
}

#[tokio::test]
async fn a_failed_login_does_not_tell_an_unknown_user_from_a_wrong_password() {
    let owned = spawn_stack_with(Backend::MySql, |_| {}).await;
    owned.login_as("known").await;
    let stack = &owned;
    let answer = |username: &'static str| async move {
        let response = log_in(stack, username, "not the password").await;
        let status = response.status();
        let www = response.headers().get("www-authenticate").cloned();
        (status, www, response.bytes().await.unwrap())
    };
    let wrong_password = answer("known").await;
    let unknown_user = answer("unknown").await;
    assert_eq!(wrong_password.0, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong_password, unknown_user);
    owned.stop().await;
}

#[tokio::test]
async fn the_admin_surfaces_need_the_admin_token_and_the_scrape_does_not() {
    let stack = spawn_stack_with(Backend::MySql, |_| {}).await;
    let admin = |path: &str| stack.http.get(format!("{}{path}", stack.admin));
    for path in [
        "/admin/dashboard",
        "/admin/dashboard/snapshot",
        "/admin/breakers",
    ] {
        let anonymous = admin(path).send().await.unwrap();
        assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED, "{path}");
        // The browser's cue to ask for a login.
        let challenges: Vec<_> = anonymous
            .headers()
            .get_all("www-authenticate")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        assert!(challenges[0].starts_with("Basic realm="), "{challenges:?}");
        assert_eq!(
            error_code(anonymous, StatusCode::UNAUTHORIZED).await,
            "unauthenticated"
        );
        let wrong = admin(path)
            .basic_auth("operator", Some("nope"))
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED, "{path}");
        let wrong = admin(path)
            .bearer_auth(format!("{ADMIN_TOKEN}x"))
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED, "{path}");
    }
    // A browser after its prompt (Basic, any user name), and API clients.
    let page = admin("/admin/dashboard")
        .header("authorization", admin_basic())
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("<html"));
    let breakers = admin("/admin/breakers")
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(breakers.status(), StatusCode::OK);
    for open in ["/metrics", "/healthz", "/readyz"] {
        assert_eq!(
            admin(open).send().await.unwrap().status(),
            StatusCode::OK,
            "{open}"
        );
    }
    stack.stop().await;
}

#[tokio::test]
async fn without_an_admin_token_the_admin_surfaces_are_closed() {
    let stack = spawn_stack_with(Backend::MySql, |settings| settings.admin_token = None).await;
    let page = stack
        .http
        .get(format!("{}/admin/dashboard", stack.admin))
        .header("authorization", admin_basic())
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(page, StatusCode::FORBIDDEN).await,
        "permission_denied"
    );
    stack.stop().await;
}
