//! One reading of TLS failures, whoever met them: ferry's own client (rustls' words) or an
//! engine (Go's words). A plain-HTTP registry spoken to over HTTPS, or a certificate from an
//! authority this machine does not trust, is told the same way everywhere, with the registry
//! and the flag that helps.

use crate::model::Side;

/// What kind of TLS failure a message describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsProblem {
    /// The registry answered HTTPS with plain HTTP.
    PlainHttp,
    /// The certificate's issuer is not among the trusted authorities.
    UnknownAuthority,
    /// Any other certificate or handshake failure.
    Other,
}

/// The TLS problem `message` describes, if any.
pub fn problem(message: &str) -> Option<TlsProblem> {
    let m = message.to_ascii_lowercase();
    let any = |needles: &[&str]| needles.iter().any(|n| m.contains(n));
    if any(&[
        // Go's net/http
        "server gave http response to https client",
        // rustls, reading an HTTP answer as a TLS record
        "invalidcontenttype",
        "received corrupt message",
    ]) {
        Some(TlsProblem::PlainHttp)
    } else if any(&[
        "certificate signed by unknown authority",
        "unknownissuer",
        "unknown issuer",
        "unable to get local issuer certificate",
    ]) {
        Some(TlsProblem::UnknownAuthority)
    } else if any(&["x509:", "tls:", "certificate", "handshake"]) {
        Some(TlsProblem::Other)
    } else {
        None
    }
}

/// The message for a TLS failure with `host` on `side`: what happened and what helps, so that
/// a plan, a verify and a copy all say the same. `detail` is the original message, kept for
/// problems without a known remedy.
pub fn explain(side: Side, host: &str, problem: TlsProblem, detail: &str) -> String {
    let flag = match side {
        Side::Source => "src",
        Side::Destination => "dest",
    };
    match problem {
        TlsProblem::PlainHttp => format!(
            "{host} speaks plain HTTP, not HTTPS: to use it anyway, pass --{flag}-tls-verify=false \
             (or set insecure = true for it in registries.conf)"
        ),
        TlsProblem::UnknownAuthority => format!(
            "{host} has a certificate from an authority this machine does not trust: pass its CA \
             with --{flag}-cert-dir DIR (a directory holding the CA as a .crt file), or \
             --{flag}-tls-verify=false to skip verification"
        ),
        TlsProblem::Other => format!("TLS with {host} failed: {detail}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rustls_and_go_words_read_the_same() {
        let table = [
            // ferry's client (reqwest + rustls) against a plain-HTTP registry
            ("tags of x: error sending request for url (https://127.0.0.1:5000/v2/): client error (Connect): received corrupt message of type InvalidContentType", Some(TlsProblem::PlainHttp)),
            // skopeo against the same registry
            ("pinging container registry 127.0.0.1:5000: Get \"https://127.0.0.1:5000/v2/\": http: server gave HTTP response to HTTPS client", Some(TlsProblem::PlainHttp)),
            ("error sending request: invalid peer certificate: UnknownIssuer", Some(TlsProblem::UnknownAuthority)),
            ("pinging container registry h: Get \"https://h/v2/\": x509: certificate signed by unknown authority", Some(TlsProblem::UnknownAuthority)),
            ("x509: certificate has expired or is not yet valid", Some(TlsProblem::Other)),
            ("dial tcp 127.0.0.1:5000: connect: connection refused", None),
        ];
        for (message, want) in table {
            assert_eq!(problem(message), want, "{message}");
        }
    }

    #[test]
    fn the_hint_names_the_registry_and_the_flag_of_its_side() {
        let plain = explain(
            Side::Destination,
            "127.0.0.1:5000",
            TlsProblem::PlainHttp,
            "x",
        );
        assert!(
            plain.starts_with("127.0.0.1:5000 speaks plain HTTP"),
            "{plain}"
        );
        assert!(plain.contains("--dest-tls-verify=false"), "{plain}");
        let ca = explain(Side::Source, "quay.io", TlsProblem::UnknownAuthority, "x");
        assert!(ca.contains("--src-cert-dir DIR"), "{ca}");
        let other = explain(Side::Source, "h", TlsProblem::Other, "x509: expired");
        assert_eq!(other, "TLS with h failed: x509: expired");
    }
}
