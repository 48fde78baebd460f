//! Credentials that must never be printed. `Secret` has a redacting `Debug` and no `Display`,
//! so a password can only leave the process through the one place that asks for it on purpose
//! (the private auth file).

use std::fmt;

/// A value that is never shown: `Debug` prints `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret itself; call sites are the auth-file writer only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A username and password for one side (source or destination).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: Secret,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &self.password)
            .finish()
    }
}

impl Credentials {
    /// Parses skopeo's `USER:PASS` form. The username is everything before the first colon,
    /// so passwords may contain colons.
    pub fn parse_user_pass(value: &str) -> Option<Credentials> {
        let (username, password) = value.split_once(':')?;
        if username.is_empty() || password.is_empty() {
            return None;
        }
        Some(Credentials {
            username: username.to_owned(),
            password: Secret::new(password),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_password() {
        let creds = Credentials::parse_user_pass("robot:s3cr:et").unwrap();
        assert_eq!(creds.username, "robot");
        assert_eq!(creds.password.expose(), "s3cr:et");
        let shown = format!("{creds:?}");
        assert!(!shown.contains("s3cr"), "{shown}");
        assert!(shown.contains("<redacted>"));
    }

    #[test]
    fn user_pass_needs_both_halves() {
        for bad in ["robot", "robot:", ":pw", ""] {
            assert!(Credentials::parse_user_pass(bad).is_none(), "{bad}");
        }
    }
}
