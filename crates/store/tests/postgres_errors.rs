//! PostgreSQL connection failures never show the password of the connection URL.

mod support;

use std::time::Duration;

use lakests_store::PostgresStore;

/// The whole text of a failed connect: Display, source chain and Debug.
async fn connect_error(url: &str) -> String {
    match PostgresStore::connect(url, 1, Duration::from_secs(1)).await {
        Ok(_) => panic!("connected with a bad URL"),
        Err(e) => {
            let mut text = format!("{e} | {e:?}");
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                text.push_str(&format!(" | {s} | {s:?}"));
                source = s.source();
            }
            eprintln!("{url}: {text}");
            text
        }
    }
}

fn assert_no_secret(text: &str, secrets: &[&str]) {
    for secret in secrets {
        assert!(
            !text.contains(secret),
            "error text leaks {secret:?}: {text}"
        );
    }
}

#[tokio::test]
async fn a_refused_connection_names_the_server_but_not_the_password() {
    let text = connect_error("postgres://u:hunter2@127.0.0.1:1/x").await;
    assert_no_secret(&text, &["hunter2"]);
    assert!(
        text.contains("127.0.0.1:1/x as u"),
        "the operator can tell where: {text}"
    );
    assert!(text.contains("timeout 1s"), "{text}");
}

#[tokio::test]
async fn a_percent_encoded_password_is_not_shown_in_either_form() {
    let text = connect_error("postgres://u:hun%40ter%2F2@127.0.0.1:1/x").await;
    assert_no_secret(&text, &["hun%40ter%2F2", "hun@ter/2"]);
}

#[tokio::test]
async fn a_malformed_url_error_does_not_contain_the_password() {
    for url in [
        "postgres://u:hunter2@127.0.0.1:notaport/x",
        "postgres://u:hunter2@127.0.0.1:1/x?sslmode=hunter2",
        "postgres://u:hunter2@127.0.0.1:1/x?password=hunter3&options=hunter2",
        "postgres://u:hunter2@[::1/x",
        "hunter2",
    ] {
        let text = connect_error(url).await;
        assert_no_secret(&text, &["hunter2", "hunter3"]);
        assert!(!text.contains(url), "the URL is never quoted: {text}");
    }
}

#[tokio::test]
async fn an_error_from_the_server_does_not_contain_the_password() {
    let Some(admin_url) =
        support::postgres_url("an_error_from_the_server_does_not_contain_the_password")
    else {
        return;
    };
    // A real server refusal (the database does not exist), with a password in the URL.
    let mut url = url::Url::parse(&admin_url).expect("URL");
    url.set_password(Some("hunter2")).expect("set password");
    url.set_path("/lakests_no_such_database");
    let text = connect_error(url.as_str()).await;
    assert_no_secret(&text, &["hunter2"]);
    assert!(
        text.contains("lakests_no_such_database"),
        "the server's reason is kept: {text}"
    );
}

#[tokio::test]
async fn a_connected_store_does_not_show_the_password_in_its_debug_output() {
    let Some(admin_url) =
        support::postgres_url("a_connected_store_does_not_show_the_password_in_its_debug_output")
    else {
        return;
    };
    // A fresh database: connecting runs the migrations. The URL carries a password: the test
    // server's own (scripts/postgres.sh sets one), or, for a server that trusts local
    // connections and so accepts any, one made up here.
    let (database, fresh) = support::PostgresFixture::create_database(&admin_url).await;
    let mut url = url::Url::parse(&fresh).expect("URL");
    if url.password().is_none() {
        url.set_password(Some("hunter2")).expect("set password");
    }
    let password = url.password().expect("a password").to_owned();
    let connected = PostgresStore::connect(url.as_str(), 1, Duration::from_secs(5)).await;
    let debug = match &connected {
        Ok(store) => format!("{store:?}"),
        Err(e) => format!("{e:?}"),
    };
    if let Ok(store) = connected {
        store.close().await;
    }
    support::PostgresFixture::drop_database(&admin_url, &database).await;
    assert!(debug.starts_with("PostgresStore"), "connected: {debug}");
    assert_no_secret(&debug, &[password.as_str()]);
}
