//! A connection to xvsd's control socket (protocol version 1).

use serde::de::DeserializeOwned;
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;
use xvs_control::proto::{Envelope, Request, VERSION};

/// A connected client.
pub struct Client {
    reader: BufReader<UnixStream>,
}

impl Client {
    /// Connects to the daemon at `path`.
    pub fn connect(path: &Path) -> Result<Client, String> {
        let s = UnixStream::connect(path).map_err(|e| {
            format!(
                "cannot reach xvsd at {}: {e} (is xvsd running? choose its socket with --socket PATH or XVS_SOCKET)",
                path.display()
            )
        })?;
        s.set_read_timeout(Some(Duration::from_secs(30)))
            .map_err(|e| e.to_string())?;
        Ok(Client {
            reader: BufReader::new(s),
        })
    }

    /// Sends a request; the reply's fields, or the daemon's error.
    pub fn call(&mut self, req: Request) -> Result<Value, String> {
        let line =
            serde_json::to_string(&Envelope { v: VERSION, req }).map_err(|e| e.to_string())?;
        let mut w = self.reader.get_ref();
        writeln!(w, "{line}").map_err(|e| format!("cannot send to xvsd: {e}"))?;
        let mut reply = String::new();
        self.reader
            .read_line(&mut reply)
            .map_err(|e| format!("no answer from xvsd: {e}"))?;
        if reply.is_empty() {
            return Err("xvsd closed the connection without answering".into());
        }
        let v: Value =
            serde_json::from_str(&reply).map_err(|e| format!("bad answer from xvsd: {e}"))?;
        if v.get("ok").and_then(Value::as_bool) == Some(true) {
            Ok(v)
        } else {
            Err(v
                .get("error")
                .and_then(Value::as_str)
                .unwrap_or("xvsd refused the request")
                .to_string())
        }
    }

    /// Sends a request and decodes the reply.
    pub fn get<T: DeserializeOwned>(&mut self, req: Request) -> Result<T, String> {
        let v = self.call(req)?;
        serde_json::from_value(v).map_err(|e| format!("unexpected answer from xvsd: {e}"))
    }
}
