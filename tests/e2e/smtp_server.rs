//! A small real SMTP server on 127.0.0.1 for end-to-end tests: threads and std::net, speaking
//! EHLO/HELO, STARTTLS, AUTH PLAIN and LOGIN, MAIL, RCPT, DATA, RSET, NOOP and QUIT, with
//! implicit TLS as a mode. TLS uses a self-signed certificate for 127.0.0.1 made by rcgen and a
//! rustls server; the certificate's PEM is handed to the test to trust via `ca_file`. A test
//! can make it stop answering once at a chosen point ([`Stall`]) to kill the sender there.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use base64::Engine as _;

/// How the server secures connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmtpMode {
    /// Plain text, STARTTLS not offered.
    Plain,
    /// Plain, with STARTTLS offered.
    Starttls,
    /// TLS from the first byte.
    Implicit,
}

/// Where the server stops answering, once: the connection then hangs, so a test knows exactly
/// what the sender has seen when it kills it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stall {
    /// The whole message arrived (and is in [`SmtpServer::mails`]) but its `250` never comes.
    BeforeDataReply,
    /// The message was acknowledged with `250`; the reply to `QUIT` never comes.
    BeforeQuitReply,
}

/// How long a stalled connection hangs before the server drops it.
const STALL: Duration = Duration::from_secs(30);

/// The stall to make and whether it happened, shared with the connection threads.
#[derive(Default)]
struct Stalls {
    next: Mutex<Option<Stall>>,
    happened: AtomicBool,
}

impl Stalls {
    /// Hangs the connection if `at` is the stall asked for (once).
    fn at(&self, at: Stall) -> bool {
        let mut next = self.next.lock().unwrap();
        if *next != Some(at) {
            return false;
        }
        *next = None;
        drop(next);
        self.happened.store(true, Ordering::SeqCst);
        thread::sleep(STALL);
        true
    }
}

/// One message as the server received it.
#[derive(Clone, Debug, Default)]
pub struct ReceivedMail {
    /// `MAIL FROM` address.
    pub from: String,
    /// `RCPT TO` addresses.
    pub rcpt: Vec<String>,
    /// The DATA, dot-unstuffed, CRLF line ends.
    pub data: String,
    /// (mechanism, user, password) of a successful AUTH.
    pub auth: Option<(String, String, String)>,
    /// Whether the message travelled over TLS.
    pub tls: bool,
}

/// The server; it runs until the test process ends.
pub struct SmtpServer {
    pub port: u16,
    /// PEM of the server certificate (TLS modes).
    pub cert_pem: String,
    mails: Arc<Mutex<Vec<ReceivedMail>>>,
    stalls: Arc<Stalls>,
}

trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

impl SmtpServer {
    /// Binds 127.0.0.1 on a free port and starts serving in `mode`.
    pub fn start(mode: SmtpMode) -> SmtpServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind smtp");
        let port = listener.local_addr().unwrap().port();
        let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()])
            .expect("self-signed certificate");
        let cert_der = certified.cert.der().to_vec();
        let key_der = certified.signing_key.serialize_der();
        let cert_pem = pem("CERTIFICATE", &cert_der);
        let config = Arc::new(
            rustls::ServerConfig::builder()
                .with_no_client_auth()
                .with_single_cert(
                    vec![rustls::pki_types::CertificateDer::from(cert_der)],
                    rustls::pki_types::PrivateKeyDer::Pkcs8(key_der.into()),
                )
                .expect("rustls server config"),
        );
        let mails = Arc::new(Mutex::new(Vec::new()));
        let served = Arc::clone(&mails);
        let stalls = Arc::new(Stalls::default());
        let stalling = Arc::clone(&stalls);
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mails = Arc::clone(&served);
                let config = Arc::clone(&config);
                let stalls = Arc::clone(&stalling);
                thread::spawn(move || {
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(20)));
                    let boxed: Box<dyn Stream> = if mode == SmtpMode::Implicit {
                        let conn = rustls::ServerConnection::new(config.clone()).unwrap();
                        Box::new(rustls::StreamOwned::new(conn, stream))
                    } else {
                        Box::new(stream)
                    };
                    serve(boxed, mode, &config, &mails, &stalls);
                });
            }
        });
        SmtpServer {
            port,
            cert_pem,
            mails,
            stalls,
        }
    }

    /// Makes the next conversation that reaches `at` hang there.
    pub fn stall_once(&self, at: Stall) {
        *self.stalls.next.lock().unwrap() = Some(at);
    }

    /// Whether the stall asked for has happened (a connection hangs in it now).
    pub fn stalled(&self) -> bool {
        self.stalls.happened.load(Ordering::SeqCst)
    }

    /// Every message received so far.
    pub fn mails(&self) -> Vec<ReceivedMail> {
        self.mails.lock().unwrap().clone()
    }
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn decode(text: &str) -> String {
    String::from_utf8_lossy(
        &base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .unwrap_or_default(),
    )
    .into_owned()
}

fn serve(
    stream: Box<dyn Stream>,
    mode: SmtpMode,
    config: &Arc<rustls::ServerConfig>,
    mails: &Mutex<Vec<ReceivedMail>>,
    stalls: &Stalls,
) {
    let mut reader = BufReader::new(stream);
    let mut tls = mode == SmtpMode::Implicit;
    let mut current = ReceivedMail::default();
    let mut auth = None;
    macro_rules! reply {
        ($($arg:tt)*) => {{
            let text = format!($($arg)*);
            if reader.get_mut().write_all(text.as_bytes()).and_then(|_| reader.get_mut().flush()).is_err() {
                return;
            }
        }};
    }
    let read_line = |reader: &mut BufReader<Box<dyn Stream>>| -> Option<String> {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(line.trim_end_matches(['\r', '\n']).to_string()),
        }
    };
    reply!("220 127.0.0.1 ESMTP storywatch-test\r\n");
    while let Some(line) = read_line(&mut reader) {
        let upper = line.to_ascii_uppercase();
        if upper.starts_with("EHLO") {
            let starttls = if mode == SmtpMode::Starttls && !tls {
                "250-STARTTLS\r\n"
            } else {
                ""
            };
            reply!("250-127.0.0.1\r\n{starttls}250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n");
        } else if upper.starts_with("HELO") {
            reply!("250 127.0.0.1\r\n");
        } else if upper == "STARTTLS" && mode == SmtpMode::Starttls && !tls {
            reply!("220 ready for TLS\r\n");
            let plain = reader.into_inner();
            let conn = rustls::ServerConnection::new(config.clone()).unwrap();
            let upgraded: Box<dyn Stream> = Box::new(rustls::StreamOwned::new(conn, plain));
            reader = BufReader::new(upgraded);
            tls = true;
        } else if upper.starts_with("AUTH PLAIN") {
            let initial = line.get(10..).unwrap_or("").trim().to_string();
            let response = if initial.is_empty() {
                reply!("334 \r\n");
                read_line(&mut reader).unwrap_or_default()
            } else {
                initial
            };
            let decoded = decode(&response);
            let mut parts = decoded.split('\0');
            let _authzid = parts.next();
            let user = parts.next().unwrap_or("").to_string();
            let password = parts.next().unwrap_or("").to_string();
            auth = Some(("PLAIN".to_string(), user, password));
            reply!("235 2.7.0 authenticated\r\n");
        } else if upper.starts_with("AUTH LOGIN") {
            reply!("334 VXNlcm5hbWU6\r\n");
            let user = decode(&read_line(&mut reader).unwrap_or_default());
            reply!("334 UGFzc3dvcmQ6\r\n");
            let password = decode(&read_line(&mut reader).unwrap_or_default());
            auth = Some(("LOGIN".to_string(), user, password));
            reply!("235 2.7.0 authenticated\r\n");
        } else if upper.starts_with("MAIL FROM:") {
            current = ReceivedMail::default();
            current.from = address(&line[10..]);
            reply!("250 2.1.0 ok\r\n");
        } else if upper.starts_with("RCPT TO:") {
            current.rcpt.push(address(&line[8..]));
            reply!("250 2.1.5 ok\r\n");
        } else if upper == "DATA" {
            reply!("354 end with <CRLF>.<CRLF>\r\n");
            let mut data = String::new();
            loop {
                let Some(line) = read_line(&mut reader) else {
                    return;
                };
                if line == "." {
                    break;
                }
                let line = line.strip_prefix('.').unwrap_or(&line);
                data.push_str(line);
                data.push_str("\r\n");
            }
            current.data = data;
            current.auth = auth.clone();
            current.tls = tls;
            mails.lock().unwrap().push(std::mem::take(&mut current));
            if stalls.at(Stall::BeforeDataReply) {
                return;
            }
            reply!("250 2.0.0 queued\r\n");
        } else if upper == "RSET" || upper == "NOOP" {
            reply!("250 ok\r\n");
        } else if upper == "QUIT" {
            if stalls.at(Stall::BeforeQuitReply) {
                return;
            }
            reply!("221 bye\r\n");
            return;
        } else {
            reply!("502 5.5.2 not implemented\r\n");
        }
    }
}

/// `<a@b.c> SIZE=…` → `a@b.c`.
fn address(text: &str) -> String {
    let text = text.trim();
    match (text.find('<'), text.find('>')) {
        (Some(start), Some(end)) if start < end => text[start + 1..end].to_string(),
        _ => text.split_whitespace().next().unwrap_or("").to_string(),
    }
}
