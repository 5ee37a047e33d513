//! Shared secrets: [`RevocationsToken`] (`GET /auth/revocations`) and [`AdminToken`] (`/admin`).

use std::fmt;

use subtle::ConstantTimeEq;

/// Defines a shared secret type: at least 32 characters of visible ASCII, compared in constant
/// time, never printed by `Debug`.
macro_rules! shared_secret {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $name(String);

        impl $name {
            /// The fewest characters accepted.
            pub const MIN_LEN: usize = 32;

            /// Checks the secret's form.
            pub fn parse(secret: &str) -> Result<Self, String> {
                if secret.len() < Self::MIN_LEN {
                    return Err(format!(
                        "must be at least {} characters (e.g. `openssl rand -base64 32`)",
                        Self::MIN_LEN
                    ));
                }
                if !secret.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err("must be visible ASCII characters, without spaces".into());
                }
                Ok(Self(secret.to_owned()))
            }

            /// Whether `presented` is this secret, in time that does not depend on where they
            /// differ.
            pub fn matches(&self, presented: &str) -> bool {
                self.0.as_bytes().ct_eq(presented.as_bytes()).into()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "(<redacted>)"))
            }
        }
    };
}

shared_secret! {
    /// The shared secret that resource services present (`Authorization: Bearer …`) to read
    /// `GET /auth/revocations`. At least 32 characters of visible ASCII (what fits in a header
    /// unchanged), e.g. `openssl rand -base64 32`. Compared in constant time; never printed by
    /// `Debug`.
    ///
    /// ```
    /// use tessera_http::RevocationsToken;
    ///
    /// assert!(RevocationsToken::parse("hunter2").is_err());
    /// let token = RevocationsToken::parse("q9CeZ3x0bSx2f1mWm1mK4b8Jx5m0XrLrQ0y0b2cVf8E=")?;
    /// assert_eq!(format!("{token:?}"), "RevocationsToken(<redacted>)");
    /// # Ok::<(), String>(())
    /// ```
    RevocationsToken
}

shared_secret! {
    /// The operator's secret for the admin API (`Authorization: Bearer …` on every `/admin`
    /// route; only in that header). The same form and checks as [`RevocationsToken`].
    ///
    /// ```
    /// use tessera_http::AdminToken;
    ///
    /// assert!(AdminToken::parse("short").is_err());
    /// let token = AdminToken::parse("4Jx5m0XrLrQ0y0b2cVf8Eq9CeZ3x0bSx2f1mWm1mK=")?;
    /// assert!(token.matches("4Jx5m0XrLrQ0y0b2cVf8Eq9CeZ3x0bSx2f1mWm1mK="));
    /// assert_eq!(format!("{token:?}"), "AdminToken(<redacted>)");
    /// # Ok::<(), String>(())
    /// ```
    AdminToken
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_secret_matches() {
        let secret = "a".repeat(40);
        let token = RevocationsToken::parse(&secret).unwrap();
        assert!(token.matches(&secret));
        for other in [
            "a".repeat(39),
            "a".repeat(41),
            format!("{}b", "a".repeat(39)),
            String::new(),
        ] {
            assert!(!token.matches(&other), "{other}");
        }
        assert!(RevocationsToken::parse(&format!("{} ", "a".repeat(40))).is_err());
        assert!(RevocationsToken::parse(&"é".repeat(20)).is_err());
    }
}
