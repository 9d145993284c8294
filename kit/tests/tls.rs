//! TLS to etcd, Redis and MariaDB, against real servers this test starts with
//! a throwaway CA (made with the `openssl` CLI), each requiring a client
//! certificate; and, in a build without `kit/tls`, the refusal of TLS
//! settings at start-up.

#![allow(clippy::unwrap_used)]

#[cfg(feature = "tls")]
mod with_tls {
    use std::path::{Path, PathBuf};
    use std::process::{Child, Command, Stdio};
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    use kit::cache::{Cache, CacheSettings};
    use kit::db::{DatabaseSettings, DatabaseTls, SslMode};
    use kit::metrics::Registry;
    use kit::server::GrpcServer;
    use kit::testing::{self, RunningServer};
    use kit::tls::TlsFiles;

    /// A CA, a server certificate for 127.0.0.1 and a client certificate,
    /// all signed by it, in a temporary directory.
    struct Ca {
        dir: tempfile::TempDir,
    }

    fn openssl(dir: &Path, args: &[&str]) {
        let output = Command::new("openssl")
            .current_dir(dir)
            .args(args)
            .output()
            .expect("the openssl CLI is needed to make a throwaway CA");
        assert!(
            output.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    impl Ca {
        fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path();
            let key = [
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
            ];
            openssl(
                path,
                &[
                    &["req", "-x509"][..],
                    &key,
                    &[
                        "-keyout",
                        "ca.key",
                        "-out",
                        "ca.pem",
                        "-days",
                        "1",
                        "-subj",
                        "/CN=test-ca",
                    ],
                ]
                .concat(),
            );
            for (name, usage) in [
                (
                    "server",
                    "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
                ),
                ("client", "extendedKeyUsage=clientAuth\n"),
            ] {
                std::fs::write(path.join(format!("{name}.ext")), usage).unwrap();
                openssl(
                    path,
                    &[
                        &["req"][..],
                        &key,
                        &[
                            "-keyout",
                            &format!("{name}.key"),
                            "-out",
                            &format!("{name}.csr"),
                            "-subj",
                            &format!("/CN={name}"),
                        ],
                    ]
                    .concat(),
                );
                openssl(
                    path,
                    &[
                        "x509",
                        "-req",
                        "-in",
                        &format!("{name}.csr"),
                        "-CA",
                        "ca.pem",
                        "-CAkey",
                        "ca.key",
                        "-CAcreateserial",
                        "-days",
                        "1",
                        "-out",
                        &format!("{name}.pem"),
                        "-extfile",
                        &format!("{name}.ext"),
                    ],
                );
            }
            Self { dir }
        }

        fn file(&self, name: &str) -> PathBuf {
            self.dir.path().join(name)
        }

        /// What a client trusts and presents.
        fn client(&self) -> TlsFiles {
            TlsFiles {
                ca_file: Some(self.file("ca.pem")),
                cert_file: Some(self.file("client.pem")),
                key_file: Some(self.file("client.key")),
            }
        }
    }

    /// A child process, killed when the test ends.
    struct Process(Child);

    impl Drop for Process {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    async fn wait_for_port(port: u16) {
        for _ in 0..400 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("nothing listens on port {port}");
    }

    #[tokio::test]
    async fn a_service_registers_in_an_etcd_that_requires_tls_and_a_client_certificate() {
        testing::init_tracing();
        let ca = Ca::new();
        let (client, peer) = (testing::free_port(), testing::free_port());
        let client_url = format!("https://127.0.0.1:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let _etcd = Process(
            Command::new("etcd")
                .args(["--name", "tls", "--data-dir"])
                .arg(ca.dir.path().join("etcd"))
                .args(["--listen-client-urls", &client_url])
                .args(["--advertise-client-urls", &client_url])
                .args(["--listen-peer-urls", &peer_url])
                .args(["--initial-advertise-peer-urls", &peer_url])
                .args(["--initial-cluster", &format!("tls={peer_url}")])
                .arg("--cert-file")
                .arg(ca.file("server.pem"))
                .arg("--key-file")
                .arg(ca.file("server.key"))
                .arg("--trusted-ca-file")
                .arg(ca.file("ca.pem"))
                .args(["--client-cert-auth", "--log-level", "error"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        wait_for_port(client).await;

        let mut platform = kit::PlatformSettings::default();
        let prefix = format!("/{}", testing::unique_name("tls"));
        testing::prepare_platform(&mut platform, &prefix);
        platform.discovery.endpoints = vec![client_url];
        platform.discovery.tls = ca.client();
        let server = GrpcServer::bind("tls-probe", &platform, &Registry::new())
            .await
            .unwrap();
        let server = RunningServer::spawn(server);
        // SERVING only once the instance key is in etcd.
        server.wait_until_serving().await;
        server.stop().await;

        // The server does insist on the certificate: without it, refused.
        let options = etcd_client::ConnectOptions::new()
            .with_timeout(Duration::from_secs(5))
            .with_tls(etcd_client::TlsOptions::new().ca_certificate(
                etcd_client::Certificate::from_pem(std::fs::read(ca.file("ca.pem")).unwrap()),
            ));
        let refused = match etcd_client::Client::connect(
            &platform.discovery.endpoints,
            Some(options),
        )
        .await
        {
            Ok(mut client) => client.get("any", None).await.is_err(),
            Err(_) => true,
        };
        assert!(refused);
    }

    #[tokio::test]
    async fn the_cache_reads_and_writes_a_redis_that_requires_tls_and_a_client_certificate() {
        let ca = Ca::new();
        let port = testing::free_port();
        let _redis = Process(
            Command::new("redis-server")
                .args(["--port", "0", "--tls-port", &port.to_string()])
                .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
                .arg("--tls-cert-file")
                .arg(ca.file("server.pem"))
                .arg("--tls-key-file")
                .arg(ca.file("server.key"))
                .arg("--tls-ca-cert-file")
                .arg(ca.file("ca.pem"))
                .args(["--tls-auth-clients", "yes"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server is not installed"),
        );
        wait_for_port(port).await;
        let settings = |tls: TlsFiles| CacheSettings {
            redis_url: Some(format!("rediss://127.0.0.1:{port}").into()),
            prefix: format!("{}:", testing::unique_name("tls")),
            timeout: Duration::from_secs(2),
            tls,
            ..Default::default()
        };
        let settings = settings(ca.client());

        let writer = Cache::new(&settings, &Registry::new()).unwrap();
        writer.keyspace::<i64>("n").put(7, &42).await;

        // A second instance finds it there: no load.
        let reader = Cache::new(&settings, &Registry::new()).unwrap();
        let loads = std::sync::atomic::AtomicUsize::new(0);
        let found = reader
            .keyspace::<i64>("n")
            .get_or_load(7, |_| async {
                loads.fetch_add(1, Ordering::SeqCst);
                Ok::<_, std::convert::Infallible>(std::collections::HashMap::from([(7, 0)]))
            })
            .await
            .unwrap();
        assert_eq!(found, Some(42));
        assert_eq!(loads.load(Ordering::SeqCst), 0);

        // Without a client certificate the server hangs up: a miss, loaded.
        let anonymous = Cache::new(
            &CacheSettings {
                tls: TlsFiles {
                    ca_file: Some(ca.file("ca.pem")),
                    ..Default::default()
                },
                ..settings.clone()
            },
            &Registry::new(),
        )
        .unwrap();
        let found = anonymous
            .keyspace::<i64>("n")
            .get_or_load(7, |_| async {
                loads.fetch_add(1, Ordering::SeqCst);
                Ok::<_, std::convert::Infallible>(std::collections::HashMap::from([(7, 0)]))
            })
            .await
            .unwrap();
        assert_eq!(found, Some(0));
        assert_eq!(loads.load(Ordering::SeqCst), 1);
    }

    /// A private MariaDB that accepts TLS connections only.
    struct MariaDb {
        _process: Process,
        port: u16,
    }

    impl MariaDb {
        async fn start(ca: &Ca) -> Self {
            let data = ca.dir.path().join("mariadb");
            let install = Command::new("mariadb-install-db")
                .arg("--no-defaults")
                .arg(format!("--datadir={}", data.display()))
                .args([
                    "--user=root",
                    "--auth-root-authentication-method=normal",
                    "--skip-test-db",
                ])
                .output()
                .expect("mariadb-install-db is not installed");
            assert!(install.status.success(), "{install:?}");
            let port = testing::free_port();
            let process = Process(
                Command::new("mariadbd")
                    .arg("--no-defaults")
                    .arg(format!("--datadir={}", data.display()))
                    .arg(format!("--socket={}", data.join("sock").display()))
                    .args(["--user=root", "--bind-address=127.0.0.1"])
                    .arg(format!("--port={port}"))
                    .arg(format!("--ssl-ca={}", ca.file("ca.pem").display()))
                    .arg(format!("--ssl-cert={}", ca.file("server.pem").display()))
                    .arg(format!("--ssl-key={}", ca.file("server.key").display()))
                    .args([
                        "--require-secure-transport=ON",
                        "--skip-log-bin",
                        "--innodb-buffer-pool-size=16M",
                    ])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap(),
            );
            wait_for_port(port).await;
            Self {
                _process: process,
                port,
            }
        }
    }

    fn database(url: String, tls: DatabaseTls) -> DatabaseSettings {
        DatabaseSettings {
            url: url.into(),
            tls,
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn the_pool_connects_to_a_mariadb_that_requires_tls_verifying_it_and_presenting_a_certificate()
     {
        let ca = Ca::new();
        let server = MariaDb::start(&ca).await;
        let root = format!("mysql://root@127.0.0.1:{}/mysql", server.port);
        let verified = DatabaseTls {
            mode: None,
            ca_file: Some(ca.file("ca.pem")),
            cert_file: None,
            key_file: None,
        };
        const NO_MIGRATIONS: kit::db::Migrations = kit::migrations!(
            "$CARGO_MANIFEST_DIR/tests/migrations/none",
            "$CARGO_MANIFEST_DIR/tests/migrations/none"
        );

        // Root over verified TLS: create a database and a user that must
        // present a client certificate signed by the CA.
        let pool = kit::db::connect(&database(root.clone(), verified.clone()), NO_MIGRATIONS)
            .await
            .unwrap();
        let cipher: (String, String) = sqlx::query_as("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert!(!cipher.1.is_empty(), "{cipher:?}");
        for statement in [
            "CREATE DATABASE app",
            "CREATE USER 'app'@'%' REQUIRE X509",
            "GRANT ALL ON app.* TO 'app'@'%'",
        ] {
            sqlx::raw_sql(statement).execute(&pool).await.unwrap();
        }

        let app = format!("mysql://app@127.0.0.1:{}/app", server.port);
        let with_certificate = DatabaseTls {
            mode: Some(SslMode::VerifyIdentity),
            ca_file: Some(ca.file("ca.pem")),
            cert_file: Some(ca.file("client.pem")),
            key_file: Some(ca.file("client.key")),
        };
        let pool = kit::db::connect(&database(app.clone(), with_certificate), NO_MIGRATIONS)
            .await
            .unwrap();
        let one: i64 = sqlx::query_scalar("SELECT 1")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(one, 1);

        // The same user without the certificate is turned away.
        let refused = kit::db::connect(&database(app, verified), NO_MIGRATIONS).await;
        assert!(refused.is_err());
        // And a server certificate from another CA is not trusted.
        let other = Ca::new();
        let untrusted = DatabaseTls {
            ca_file: Some(other.file("ca.pem")),
            ..Default::default()
        };
        assert!(
            kit::db::connect(&database(root, untrusted), NO_MIGRATIONS)
                .await
                .is_err()
        );
    }
}

#[cfg(not(feature = "tls"))]
mod without_tls {
    use kit::cache::{Cache, CacheSettings};
    use kit::db::{DatabaseSettings, DatabaseTls};
    use kit::metrics::Registry;
    use kit::server::GrpcServer;
    use kit::testing;

    const FEATURE: &str = "`kit/tls`";

    #[tokio::test]
    async fn a_lean_build_refuses_a_mysql_url_that_asks_for_tls_naming_the_feature() {
        const NO_MIGRATIONS: kit::db::Migrations = kit::migrations!(
            "$CARGO_MANIFEST_DIR/tests/migrations/none",
            "$CARGO_MANIFEST_DIR/tests/migrations/none"
        );
        let by_url = DatabaseSettings {
            url: format!("{}/x?ssl-mode=VERIFY_IDENTITY", testing::mysql_server()).into(),
            ..Default::default()
        };
        let by_settings = DatabaseSettings {
            url: format!("{}/x", testing::mysql_server()).into(),
            tls: DatabaseTls {
                ca_file: Some("/etc/ssl/ca.pem".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        for settings in [by_url, by_settings] {
            let message = kit::db::connect(&settings, NO_MIGRATIONS)
                .await
                .unwrap_err()
                .to_string();
            assert!(message.contains(FEATURE), "{message}");
            assert!(message.contains("database.tls"), "{message}");
        }
    }

    #[tokio::test]
    async fn a_lean_build_refuses_a_rediss_url_naming_the_feature() {
        let settings = CacheSettings {
            redis_url: Some("rediss://127.0.0.1:6380".to_owned().into()),
            ..Default::default()
        };
        let message = Cache::new(&settings, &Registry::new())
            .err()
            .unwrap()
            .to_string();
        assert!(message.contains(FEATURE), "{message}");
    }

    #[tokio::test]
    async fn a_lean_build_refuses_https_etcd_endpoints_before_binding_naming_the_feature() {
        let mut platform = kit::PlatformSettings::default();
        testing::prepare_platform(&mut platform, "/unused");
        platform.discovery.endpoints = vec!["https://127.0.0.1:2379".into()];
        let message = GrpcServer::bind("tls-probe", &platform, &Registry::new())
            .await
            .err()
            .unwrap()
            .to_string();
        assert!(message.contains(FEATURE), "{message}");
        assert!(message.contains("discovery.tls"), "{message}");
    }
}
