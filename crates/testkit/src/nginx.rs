//! A throw-away nginx.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

use crate::process::{Guarded, Launch, find_program, free_port};
use crate::server_dir::server_dir;

/// A throw-away nginx reverse proxy on a free loopback port, in one process
/// (`master_process off`, so it runs as the invoking user), stopped when dropped.
#[derive(Debug)]
pub struct NginxServer {
    port: u16,
    _dir: tempfile::TempDir,
    _process: Guarded,
}

impl NginxServer {
    /// Starts nginx with `location` (the body of a `location / { … }` block, e.g.
    /// `proxy_pass http://127.0.0.1:8081/;`) as its only location.
    ///
    /// # Errors
    /// When nginx is missing or does not start accepting connections.
    pub fn start(location: &str) -> io::Result<Self> {
        let program = find_program("nginx", &[PathBuf::from("/usr/sbin")])?;
        let port = free_port()?;
        let dir = server_dir("wbauth-nginx-")?;
        let d = dir.path().display();
        let config = format!(
            "daemon off;\nmaster_process off;\nworker_processes 1;\npid {d}/nginx.pid;\n\
             error_log {d}/error.log warn;\nevents {{ worker_connections 256; }}\n\
             http {{\n    access_log off;\n    client_body_temp_path {d}/body;\n    \
             proxy_temp_path {d}/proxy;\n    fastcgi_temp_path {d}/fastcgi;\n    \
             uwsgi_temp_path {d}/uwsgi;\n    scgi_temp_path {d}/scgi;\n    \
             server {{\n        listen 127.0.0.1:{port};\n        \
             location / {{\n            {location}\n        }}\n    }}\n}}\n"
        );
        let conf = dir.path().join("nginx.conf");
        std::fs::write(&conf, config)?;
        let args = vec![
            "-p".to_owned(),
            d.to_string(),
            "-c".to_owned(),
            conf.display().to_string(),
        ];
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let launch = Launch {
            name: "nginx",
            ready_when: "accepting connections",
            port,
            program: &program,
            args: &args,
            prefix: &[],
            log: &dir.path().join("out.log"),
            more_logs: &[dir.path().join("error.log")],
        };
        let process = Guarded::start(&launch, || {
            TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
        })?;
        Ok(Self {
            port,
            _dir: dir,
            _process: process,
        })
    }

    /// Its address, `127.0.0.1:PORT`.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }
}
