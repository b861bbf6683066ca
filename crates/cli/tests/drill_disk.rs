//! Full-disk drill (`docs/design-decisions.md` 35): the gateway's data dir (the SQLite key store
//! and the nonce journal) on a small tmpfs; under load the filesystem is filled to the last
//! block. Every request then answers 200 (its nonce recorded before the answer) or exactly
//! 503 `{"code":0,"message":"Service temporarily unavailable."}` with `Retry-After: 1`: fail
//! closed, never a 200 for a nonce that is not on disk. Writes to the key store fail with 503
//! too, `/healthz` stays 200. When the space returns, service resumes by itself. Finally the
//! gateway is killed (`kill -9`), restarted on the same files, and every request ever sent is
//! replayed: zero accepted twice, and every nonce answered 200 is refused.
//!
//! When a tmpfs cannot be mounted (no CAP_SYS_ADMIN), or with `WBAUTH_DRILL_DISK=rlimit`,
//! the disk fills differently: the gateway runs with SIGXFSZ ignored and its file-size limit
//! (`RLIMIT_FSIZE`, set with `prlimit`) is dropped to one byte, so every write that extends a
//! file fails (EFBIG) as on a full disk; raising the limit is the space returning. The nonce
//! store is a journal, not SQLite, so `PRAGMA max_page_count` would not reach it.

#![cfg(feature = "test-clock")]

mod common;
mod drill_support;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::gateway::{Gateway, T0, TOKEN, Upstream, write_config};
use drill_support::{Prepared, Reply, Scale, Tally, accepted_twice, send_batches};
use serde_json::json;

const PATH: &str = "/api/v4/order/new";
const CONCURRENCY: usize = 16;

/// How the disk fills.
enum Disk {
    /// A tmpfs of its own, filled by a filler file.
    Tmpfs { mount: PathBuf },
    /// The gateway's file-size limit.
    Rlimit,
}

impl Disk {
    /// Mounts a tmpfs at `mount` unless told not to; the rlimit fallback otherwise.
    fn prepare(mount: &Path) -> (Self, String) {
        std::fs::create_dir_all(mount).expect("mount point");
        if std::env::var("WBAUTH_DRILL_DISK").as_deref() == Ok("rlimit") {
            return (Disk::Rlimit, "WBAUTH_DRILL_DISK=rlimit".to_owned());
        }
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=16m,mode=0700", "tmpfs"])
            .arg(mount)
            .output();
        match out {
            Ok(out) if out.status.success() => (
                Disk::Tmpfs {
                    mount: mount.to_owned(),
                },
                "tmpfs".to_owned(),
            ),
            Ok(out) => (
                Disk::Rlimit,
                format!(
                    "mount failed: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            ),
            Err(e) => (Disk::Rlimit, format!("mount failed: {e}")),
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Disk::Tmpfs { .. } => "tmpfs",
            Disk::Rlimit => "rlimit",
        }
    }

    /// Takes every free block (tmpfs) or drops the gateway's file-size limit (rlimit).
    fn fill(&self, gateway: &Gateway) {
        match self {
            Disk::Tmpfs { mount } => {
                let mut filler = std::fs::File::create(mount.join("filler")).expect("filler");
                for size in [1 << 20, 4096, 1] {
                    let chunk = vec![0xa5u8; size];
                    loop {
                        match filler.write_all(&chunk) {
                            Ok(()) => {}
                            Err(e) if e.kind() == std::io::ErrorKind::StorageFull => break,
                            Err(e) => panic!("filling the tmpfs: {e}"),
                        }
                    }
                }
                // Written through to the tmpfs (it has no other backing store).
                filler.sync_all().ok();
            }
            Disk::Rlimit => prlimit(gateway, "1:unlimited"),
        }
    }

    /// Gives the space back.
    fn free(&self, gateway: &Gateway) {
        match self {
            Disk::Tmpfs { mount } => std::fs::remove_file(mount.join("filler")).expect("filler"),
            Disk::Rlimit => prlimit(gateway, "unlimited:unlimited"),
        }
    }
}

impl Drop for Disk {
    fn drop(&mut self) {
        if let Disk::Tmpfs { mount } = self {
            let _ = Command::new("umount").arg("-l").arg(&*mount).status();
        }
    }
}

fn prlimit(gateway: &Gateway, value: &str) {
    let status = Command::new("prlimit")
        .args([
            "--pid",
            &gateway.child.id().to_string(),
            &format!("--fsize={value}"),
        ])
        .status()
        .expect("prlimit runs");
    assert!(status.success(), "prlimit --fsize={value}");
}

/// Starts `wbauth serve` with `config`; its stderr goes to `log` (outside the full disk)
/// through a pipe. With `ignore_xfsz` it runs with SIGXFSZ ignored (kept across `exec`), so
/// a write past the file-size limit fails with EFBIG instead of killing it.
fn spawn(
    config: &Path,
    data_dir: &Path,
    log: &Path,
    ignore_xfsz: bool,
    clock_ms: Option<u64>,
) -> Gateway {
    let bin = env!("CARGO_BIN_EXE_wbauth");
    let mut command = if ignore_xfsz {
        let mut c = Command::new("sh");
        c.args(["-c", "trap '' XFSZ; exec \"$0\" \"$@\"", bin]);
        c
    } else {
        Command::new(bin)
    };
    command
        .args(["serve", "--config"])
        .arg(config)
        .env_remove("WBAUTH_MASTER_KEY")
        .env("WBAUTH_ADMIN_TOKEN", TOKEN)
        .env("WBAUTH_LOG", "debug")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(ms) = clock_ms {
        command.env("WBAUTH_TEST_CLOCK_MS", ms.to_string());
    }
    let mut child = command.spawn().expect("wbauth serve starts");
    let mut stderr = child.stderr.take().expect("stderr");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("log file");
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut stderr, &mut file);
    });
    Gateway::started(child, data_dir, log).unwrap_or_else(|status| {
        panic!(
            "serve exited {status}: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        )
    })
}

async fn healthz(gateway: &Gateway) -> u16 {
    reqwest::get(format!("{}/healthz", gateway.admin))
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

/// `POST /admin/accounts` (a key-store write): its status.
async fn create_account(gateway: &Gateway, name: &str) -> (u16, String) {
    let answer = reqwest::Client::new()
        .post(format!("{}/admin/accounts", gateway.admin))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body(json!({ "name": name }).to_string())
        .send()
        .await
        .expect("admin request");
    let status = answer.status().as_u16();
    (status, answer.text().await.unwrap_or_default())
}

/// Fresh signed requests (window mode, unique nonces around the frozen clock).
struct Nonces {
    key: String,
    secret: String,
    next: u64,
    last: u64,
}

impl Nonces {
    fn take(&mut self, n: usize) -> Vec<Prepared> {
        (0..n)
            .map(|_| {
                let nonce = self.next;
                self.next += 1;
                assert!(nonce <= self.last, "the window has room for the drill");
                Prepared::new(&self.key, &self.secret, PATH, nonce, true)
            })
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_disk_fails_closed_with_503_and_recovers() {
    let scale = Scale::from_env();
    let cycles = scale.pick(1, 5);
    let dir = tempfile::tempdir().expect("tempdir");
    let (disk, why) = Disk::prepare(&dir.path().join("mnt"));
    if !matches!(disk, Disk::Tmpfs { .. }) {
        eprintln!("full-disk drill: no tmpfs ({why}); filling through RLIMIT_FSIZE instead");
    }
    let root = dir.path().join("mnt");
    let upstream = Upstream::start().await;
    let config = write_config(&root, upstream.addr, "");
    let data_dir = root.join("data");
    let log = dir.path().join("stderr.log");
    let rlimit = matches!(disk, Disk::Rlimit);
    let mut gateway = spawn(&config, &data_dir, &log, rlimit, None);
    gateway.clock(json!({"set_ms": T0})).await;
    let (key, secret) = gateway.provision_key("drill", "trade", &[]).await;
    let frozen = gateway.clock(json!({"set_ms": T0 + 600_000})).await;
    let mut nonces = Nonces {
        key,
        secret,
        next: frozen - 4_900,
        last: frozen + 4_900,
    };

    let mut tally = Tally::default();
    let mut first: Vec<(Prepared, Reply)> = Vec::new();
    let mut busy_while_full = 0usize;
    let mut admin_while_full = Vec::new();
    for cycle in 0..cycles {
        // Space: everything is accepted.
        let requests = nonces.take(4 * CONCURRENCY);
        let replies = send_batches(&gateway.base, &requests, CONCURRENCY).await;
        for reply in &replies {
            assert_eq!(reply.status, Some(200), "cycle {cycle}, space: {reply:?}");
        }
        tally.add_all(&replies);
        first.extend(requests.into_iter().zip(replies));

        // Full: 200 while the journal's last block still has room, then 503, nothing else.
        disk.fill(&gateway);
        let mut seen_busy = false;
        let mut sent_full = 0;
        while !seen_busy {
            assert!(
                sent_full < 4_000,
                "cycle {cycle}: no 503 after {sent_full} requests on a full disk"
            );
            let requests = nonces.take(CONCURRENCY);
            let replies = send_batches(&gateway.base, &requests, CONCURRENCY).await;
            sent_full += requests.len();
            for reply in &replies {
                assert!(
                    reply.accepted() || reply.is_busy(),
                    "cycle {cycle}, full: {reply:?}"
                );
                seen_busy |= reply.is_busy();
                busy_while_full += usize::from(reply.is_busy());
            }
            tally.add_all(&replies);
            first.extend(requests.into_iter().zip(replies));
        }
        let (status, body) = create_account(&gateway, &format!("full{cycle}")).await;
        admin_while_full.push(status);
        if let Disk::Tmpfs { .. } = disk {
            // The SQLite key store cannot grow either: 503, not a 500.
            assert_eq!(
                (status, body.as_str()),
                (503, drill_support::BUSY),
                "cycle {cycle}: a key-store write on a full disk"
            );
        }
        assert_eq!(
            healthz(&gateway).await,
            200,
            "cycle {cycle}: /healthz while full"
        );

        // Space returns: service resumes by itself (bounded wait on answers).
        disk.free(&gateway);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let requests = nonces.take(CONCURRENCY);
            let replies = send_batches(&gateway.base, &requests, CONCURRENCY).await;
            let all_ok = replies.iter().all(Reply::accepted);
            for reply in &replies {
                assert!(
                    reply.accepted() || reply.is_busy(),
                    "cycle {cycle}: {reply:?}"
                );
            }
            tally.add_all(&replies);
            first.extend(requests.into_iter().zip(replies));
            if all_ok {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "cycle {cycle}: service did not resume"
            );
        }
        let (status, body) = create_account(&gateway, &format!("after{cycle}")).await;
        assert!(
            (200..300).contains(&status),
            "cycle {cycle}: {status} {body}"
        );
    }

    // kill -9, restart on the same files (clock still frozen), replay everything.
    let _ = gateway.child.kill();
    let _ = gateway.child.wait();
    drop(gateway);
    let gateway = spawn(&config, &data_dir, &log, rlimit, Some(frozen));
    let requests: Vec<Prepared> = first.iter().map(|(p, _)| p.clone()).collect();
    let replies = send_batches(&gateway.base, &requests, CONCURRENCY).await;
    tally.add_all(&replies);
    let replay: Vec<(Prepared, Reply)> = requests.into_iter().zip(replies).collect();
    for ((p, before), (_, after)) in first.iter().zip(&replay) {
        if before.accepted() {
            // Answered 200 means recorded on disk: refused after the restart.
            assert_eq!(after.status, Some(429), "{}: {after:?}", p.body);
        }
    }
    let twice = accepted_twice(&upstream, &first, &replay);
    tally.report(
        "disk",
        &[
            ("fs", disk.name().to_owned()),
            ("scale", scale.name().to_owned()),
            ("cycles", cycles.to_string()),
            ("busy_while_full", busy_while_full.to_string()),
            (
                "admin_while_full",
                admin_while_full
                    .iter()
                    .map(u16::to_string)
                    .collect::<Vec<_>>()
                    .join("/"),
            ),
        ],
        twice.len(),
    );
}
