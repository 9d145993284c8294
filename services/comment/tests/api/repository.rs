//! Every repository function, straight against MariaDB and SQLite.

use std::collections::HashMap;

use comment::repository::CommentRepository;
use kit::db::{Backend, DatabaseSettings};
use kit::metrics::Registry;
use kit::pagination::Page;
use kit::testing;

async fn repository(backend: Backend, dir: &std::path::Path) -> CommentRepository {
    let settings = DatabaseSettings {
        url: testing::database(backend, dir, "comment").await.into(),
        ..Default::default()
    };
    let pool = kit::db::connect(&settings, comment::startup::MIGRATIONS)
        .await
        .unwrap();
    CommentRepository::new(pool, &Registry::new())
}

#[tokio::test]
async fn comments_are_stored_paged_by_article_and_counted() {
    for backend in [Backend::MySql, Backend::Sqlite] {
        let dir = tempfile::tempdir().unwrap();
        let comments = repository(backend, dir.path()).await;
        let a1 = comments.insert(1, 5, "first").await.unwrap();
        let a2 = comments.insert(1, 6, "second").await.unwrap();
        let b1 = comments.insert(2, 5, "elsewhere").await.unwrap();
        assert_eq!(a1.body, "first");

        let first = Page {
            size: 1,
            before: None,
        };
        assert_eq!(
            comments.page(1, &first).await.unwrap(),
            vec![a2.clone(), a1.clone()],
            "{backend:?}: size + 1 rows, this article only"
        );
        let next = Page {
            size: 1,
            before: Some(a2.id),
        };
        assert_eq!(comments.page(1, &next).await.unwrap(), vec![a1]);
        assert_eq!(comments.page(2, &first).await.unwrap(), vec![b1]);

        assert_eq!(
            comments.counts(&[1, 2, 3]).await.unwrap(),
            HashMap::from([(1, 2), (2, 1)]),
            "{backend:?}"
        );
        assert!(comments.counts(&[]).await.unwrap().is_empty());
        assert_eq!(comments.queries().get("comment_counts"), 1);
    }
}
