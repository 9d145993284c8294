//! Every repository function, straight against MariaDB and SQLite.

use content::repository::ArticleRepository;
use kit::db::{Backend, DatabaseSettings};
use kit::metrics::Registry;
use kit::pagination::Page;
use kit::testing;

pub async fn repository(backend: Backend, dir: &std::path::Path) -> ArticleRepository {
    let settings = DatabaseSettings {
        url: testing::database(backend, dir, "content").await.into(),
        ..Default::default()
    };
    let pool = kit::db::connect(&settings, content::startup::MIGRATIONS)
        .await
        .unwrap();
    ArticleRepository::new(pool, &Registry::new())
}

#[tokio::test]
async fn articles_are_stored_found_by_id_and_paged_newest_first() {
    for backend in [Backend::MySql, Backend::Sqlite] {
        let dir = tempfile::tempdir().unwrap();
        let articles = repository(backend, dir.path()).await;
        let mut created = Vec::new();
        for i in 0..3 {
            created.push(articles.insert(9, &format!("t{i}"), "body").await.unwrap());
        }
        assert_eq!(
            articles.by_id(created[1].id).await.unwrap(),
            Some(created[1].clone())
        );
        assert_eq!(articles.by_id(created[2].id + 1).await.unwrap(), None);

        let first = Page {
            size: 2,
            before: None,
        };
        let rows = articles.page(&first).await.unwrap();
        let ids: Vec<i64> = rows.iter().map(|a| a.id).collect();
        assert_eq!(
            ids,
            [created[2].id, created[1].id, created[0].id],
            "{backend:?}: size + 1 rows"
        );
        let next = Page {
            size: 2,
            before: Some(created[1].id),
        };
        let rest = articles.page(&next).await.unwrap();
        assert_eq!(
            rest.iter()
                .map(|a| (a.id, a.summary.as_str()))
                .collect::<Vec<_>>(),
            [(created[0].id, created[0].body.as_str())],
            "{backend:?}: a short body is its own summary"
        );
        assert_eq!(articles.queries().get("articles_page"), 2);
    }
}
