use std::io;
use std::process::Command;

use crate::redis::redis_ping;
use crate::server_dir::{OWNER_FILE, server_dir};
use crate::{PostgresServer, RedisServer};

#[test]
fn directories_of_ended_test_processes_are_swept() -> io::Result<()> {
    let prefix = "wbauth-sweep-test-";
    // A process that has ended: its id names no running process.
    let mut child = Command::new("true").spawn()?;
    let ended = child.id();
    child.wait()?;
    let stale = tempfile::Builder::new().prefix(prefix).tempdir()?.keep();
    std::fs::write(stale.join(OWNER_FILE), ended.to_string())?;
    let unmarked = tempfile::Builder::new().prefix(prefix).tempdir()?;
    let ours = server_dir(prefix)?;
    let again = server_dir(prefix)?;
    assert!(!stale.exists(), "the ended process's directory is removed");
    assert!(
        unmarked.path().exists(),
        "a directory the kit did not mark is left alone"
    );
    assert!(ours.path().exists(), "a live process's directory is kept");
    assert_eq!(
        std::fs::read_to_string(again.path().join(OWNER_FILE))?,
        std::process::id().to_string()
    );
    Ok(())
}

#[test]
fn redis_starts_survives_a_kill_with_its_data_and_stops() -> io::Result<()> {
    let mut redis = RedisServer::start()?;
    assert!(redis.is_up());
    redis.kill();
    assert!(!redis.is_up());
    redis.restart()?;
    assert!(redis.is_up());
    let port = redis.port();
    drop(redis);
    assert!(!redis_ping(port));
    Ok(())
}

#[test]
fn postgres_starts_as_a_non_root_user_and_restarts_after_a_kill() -> io::Result<()> {
    let mut pg = PostgresServer::start()?;
    let url = pg.create_database("kit")?;
    assert!(url.ends_with("/kit"));
    pg.psql(
        "kit",
        "CREATE TABLE t (v BIGINT); INSERT INTO t VALUES (42)",
    )?;
    let user = pg.psql("kit", "SELECT current_setting('data_directory')")?;
    assert!(user.contains("wbauth-pg-"), "{user}");
    pg.kill();
    assert!(!pg.is_up());
    pg.restart()?;
    assert_eq!(pg.psql("kit", "SELECT v FROM t")?.trim(), "42");
    Ok(())
}
