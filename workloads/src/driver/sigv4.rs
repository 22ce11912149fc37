//! AWS Signature Version 4 for header-signed requests.
//!
//! A pure function of its inputs: the caller passes the time, so a simulated run signs with
//! simulated time and the same seed gives the same `Authorization` header. The steps are the
//! ones AWS publishes: canonical request, string to sign, signing key derived from the secret
//! through date, region, service and `aws4_request`, then the signature over the string to sign.
//!
//! Only what a DynamoDB client needs is covered: no query string (DynamoDB's JSON protocol
//! always posts to `/`), no presigned URLs, no unsigned or chunked payloads.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

/// The only algorithm this module implements.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// An access key, its secret and, for temporary credentials, the session token.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The access key id (`AKID...`), sent in the clear in the credential scope.
    pub access_key_id: String,
    /// The secret key; never sent, only used to derive the signing key.
    pub secret_access_key: String,
    /// Session token of temporary credentials, sent (and signed) as `x-amz-security-token`.
    pub session_token: Option<String>,
}

impl Credentials {
    /// Long-term credentials without a session token.
    pub fn new(access_key_id: impl Into<String>, secret_access_key: impl Into<String>) -> Self {
        Credentials {
            access_key_id: access_key_id.into(),
            secret_access_key: secret_access_key.into(),
            session_token: None,
        }
    }

    /// The same credentials with a session token.
    pub fn with_session_token(mut self, token: impl Into<String>) -> Self {
        self.session_token = Some(token.into());
        self
    }
}

impl fmt::Debug for Credentials {
    // The secret and the token stay out of logs and panic messages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("session_token", &self.session_token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// A UTC date and time to the second: what SigV4 puts in `x-amz-date` and the credential scope.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UtcDateTime {
    year: u32,
    month: u8,
    day: u8,
    hour: u8,
    minute: u8,
    second: u8,
}

impl UtcDateTime {
    /// A checked civil date and time (years 1970 to 9999, no leap seconds).
    pub fn new(year: u32, month: u8, day: u8, hour: u8, minute: u8, second: u8) -> Option<Self> {
        let valid = (1970..=9999).contains(&year)
            && (1..=12).contains(&month)
            && day >= 1
            && day <= days_in_month(year, month)
            && hour < 24
            && minute < 60
            && second < 60;
        valid.then_some(UtcDateTime { year, month, day, hour, minute, second })
    }

    /// The date and time `seconds` after the Unix epoch. Saturates at the end of year 9999, which
    /// keeps the formatted date at four digits whatever a clock returns.
    pub fn from_unix_seconds(seconds: u64) -> Self {
        // 9999-12-31T23:59:59Z
        const SECONDS_MAX: u64 = 253_402_300_799;
        let seconds = seconds.min(SECONDS_MAX);
        let days = seconds / 86_400;
        let of_day = seconds % 86_400;
        let (year, month, day) = civil_from_days(days);
        UtcDateTime {
            year,
            month,
            day,
            hour: (of_day / 3_600) as u8,
            minute: (of_day % 3_600 / 60) as u8,
            second: (of_day % 60) as u8,
        }
    }

    /// The date and time of a system-clock reading (under madsim, simulated time). A reading
    /// before the epoch gives the epoch; sub-second parts are dropped.
    pub fn from_system_time(time: SystemTime) -> Self {
        Self::from_unix_seconds(time.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0))
    }

    /// `YYYYMMDD'T'HHMMSS'Z'`, the `x-amz-date` form.
    pub fn amz_date(&self) -> String {
        format!("{}T{:02}{:02}{:02}Z", self.date_stamp(), self.hour, self.minute, self.second)
    }

    /// `YYYYMMDD`, the date of the credential scope.
    pub fn date_stamp(&self) -> String {
        format!("{:04}{:02}{:02}", self.year, self.month, self.day)
    }
}

fn is_leap_year(year: u32) -> bool {
    (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400)
}

fn days_in_month(year: u32, month: u8) -> u8 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Year, month and day of the day `days` after 1970-01-01, walking whole years then months.
/// At most 8,030 years and 12 months of iterations for the saturated maximum; a signature is
/// computed once per request, so clarity wins over a closed form here.
fn civil_from_days(mut days: u64) -> (u32, u8, u8) {
    let mut year = 1970;
    loop {
        let in_year = if is_leap_year(year) { 366 } else { 365 };
        if days < in_year {
            break;
        }
        days -= in_year;
        year += 1;
    }
    let mut month = 1;
    loop {
        let in_month = u64::from(days_in_month(year, month));
        if days < in_month || month == 12 {
            break;
        }
        days -= in_month;
        month += 1;
    }
    (year, month, days as u8 + 1)
}

/// What a request is signed for: who, where and when.
#[derive(Clone, Copy, Debug)]
pub struct SigningParams<'a> {
    /// The credentials to sign with.
    pub credentials: &'a Credentials,
    /// Region of the credential scope, e.g. `us-east-1`.
    pub region: &'a str,
    /// Service of the credential scope, `dynamodb` for DynamoDB.
    pub service: &'a str,
    /// The request time; becomes `x-amz-date`.
    pub time: UtcDateTime,
}

/// The parts of an HTTP request that are signed.
#[derive(Clone, Copy, Debug)]
pub struct SignableRequest<'a> {
    /// `GET`, `POST`, ...
    pub method: &'a str,
    /// Absolute path, not yet percent-encoded (`/` for DynamoDB).
    pub path: &'a str,
    /// Headers to sign, in any case and order; at least `host`. `x-amz-date`,
    /// `x-amz-security-token` and `authorization` given here are ignored: the signer sets the
    /// first two itself and never signs the third.
    pub headers: &'a [(&'a str, &'a str)],
    /// The payload, hashed into the canonical request.
    pub body: &'a [u8],
}

/// A signature and the intermediate strings (kept for tests and for debugging a rejection).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signed {
    /// Headers to add to the request, lowercase names: `x-amz-date`, `x-amz-security-token`
    /// (with a session token), then `authorization`.
    pub headers: Vec<(&'static str, String)>,
    /// The `Authorization` header value.
    pub authorization: String,
    /// The canonical request (step 1).
    pub canonical_request: String,
    /// The string to sign (step 2).
    pub string_to_sign: String,
    /// Lowercase header names signed, `;`-separated.
    pub signed_headers: String,
    /// Hex signature (step 4).
    pub signature: String,
}

/// Signs `request` for `params`.
pub fn sign(params: &SigningParams<'_>, request: &SignableRequest<'_>) -> Signed {
    let amz_date = params.time.amz_date();
    let date_stamp = params.time.date_stamp();

    let mut added: Vec<(&'static str, String)> = vec![("x-amz-date", amz_date.clone())];
    if let Some(token) = &params.credentials.session_token {
        added.push(("x-amz-security-token", token.clone()));
    }

    // Lowercase names, sorted; a name given twice keeps both values, in order, comma-joined.
    let mut canonical: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let given = request.headers.iter().map(|(name, value)| (name.to_ascii_lowercase(), *value));
    for (name, value) in given.filter(|(name, _)| !is_signer_owned(name)) {
        canonical.entry(name).or_default().push(canonical_header_value(value));
    }
    for (name, value) in &added {
        canonical.entry((*name).to_string()).or_default().push(canonical_header_value(value));
    }
    let mut canonical_headers = String::new();
    for (name, values) in &canonical {
        canonical_headers.push_str(name);
        canonical_headers.push(':');
        canonical_headers.push_str(&values.join(","));
        canonical_headers.push('\n');
    }
    let signed_headers = canonical.keys().map(String::as_str).collect::<Vec<_>>().join(";");

    let canonical_request = format!(
        "{method}\n{uri}\n{query}\n{canonical_headers}\n{signed_headers}\n{payload}",
        method = request.method,
        uri = canonical_uri(request.path),
        query = "",
        payload = hex(&Sha256::digest(request.body)),
    );

    let scope = format!("{date_stamp}/{}/{}/aws4_request", params.region, params.service);
    let string_to_sign =
        format!("{ALGORITHM}\n{amz_date}\n{scope}\n{}", hex(&Sha256::digest(canonical_request.as_bytes())));

    let key = signing_key(&params.credentials.secret_access_key, &date_stamp, params.region, params.service);
    let signature = hex(&hmac_sha256(&key, string_to_sign.as_bytes()));

    let authorization = format!(
        "{ALGORITHM} Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
        params.credentials.access_key_id
    );
    added.push(("authorization", authorization.clone()));
    Signed { headers: added, authorization, canonical_request, string_to_sign, signed_headers, signature }
}

/// The key for one day, region and service: HMAC chained from `"AWS4" + secret`.
pub fn signing_key(secret_access_key: &str, date_stamp: &str, region: &str, service: &str) -> [u8; 32] {
    let k_date = hmac_sha256(format!("AWS4{secret_access_key}").as_bytes(), date_stamp.as_bytes());
    let k_region = hmac_sha256(&k_date, region.as_bytes());
    let k_service = hmac_sha256(&k_region, service.as_bytes());
    hmac_sha256(&k_service, b"aws4_request")
}

fn is_signer_owned(lowercase_name: &str) -> bool {
    matches!(lowercase_name, "x-amz-date" | "x-amz-security-token" | "authorization")
}

/// Trims the value and folds every run of spaces into one, as the specification asks.
fn canonical_header_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for word in value.split(' ').filter(|word| !word.is_empty()) {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out.trim_matches(|c: char| c.is_ascii_whitespace()).to_string()
}

/// Percent-encodes every byte of the path except the unreserved characters and `/`.
fn canonical_uri(path: &str) -> String {
    if path.is_empty() {
        return "/".to_string();
    }
    let mut out = String::with_capacity(path.len());
    for &byte in path.as_bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC accepts a key of any length (longer keys are hashed first), so this cannot fail.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &byte in bytes {
        out.push(DIGITS[usize::from(byte >> 4)] as char);
        out.push(DIGITS[usize::from(byte & 0x0f)] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // AWS's SigV4 test suite: its example credentials, region, service and time.
    const SUITE_ACCESS_KEY: &str = "AKIDEXAMPLE";
    const SUITE_SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    const SUITE_HOST: &str = "example.amazonaws.com";
    const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn suite_time() -> UtcDateTime {
        UtcDateTime::new(2015, 8, 30, 12, 36, 0).expect("valid date")
    }

    fn suite_sign(
        credentials: &Credentials,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Signed {
        let params = SigningParams { credentials, region: "us-east-1", service: "service", time: suite_time() };
        sign(&params, &SignableRequest { method, path, headers, body })
    }

    fn header<'a>(signed: &'a Signed, name: &str) -> Option<&'a str> {
        signed.headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }

    #[test]
    fn get_vanilla() {
        let credentials = Credentials::new(SUITE_ACCESS_KEY, SUITE_SECRET);
        let signed = suite_sign(&credentials, "GET", "/", &[("Host", SUITE_HOST)], b"");
        assert_eq!(
            signed.canonical_request,
            format!("GET\n/\n\nhost:{SUITE_HOST}\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n{EMPTY_SHA256}")
        );
        assert_eq!(
            signed.string_to_sign,
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n\
             bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63"
        );
        assert_eq!(
            signed.authorization,
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders=host;x-amz-date, \
             Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
        assert_eq!(header(&signed, "x-amz-date"), Some("20150830T123600Z"));
        assert_eq!(header(&signed, "authorization"), Some(signed.authorization.as_str()));
        assert_eq!(header(&signed, "x-amz-security-token"), None);
    }

    #[test]
    fn post_vanilla() {
        let credentials = Credentials::new(SUITE_ACCESS_KEY, SUITE_SECRET);
        let signed = suite_sign(&credentials, "POST", "/", &[("Host", SUITE_HOST)], b"");
        assert_eq!(
            signed.canonical_request,
            format!("POST\n/\n\nhost:{SUITE_HOST}\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n{EMPTY_SHA256}")
        );
        assert_eq!(
            signed.string_to_sign,
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n\
             553f88c9e4d10fc9e109e2aeb65f030801b70c2f6468faca261d401ae622fc87"
        );
        assert_eq!(signed.signature, "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b");
    }

    #[test]
    fn post_header_key_case_signs_lowercase_names() {
        let credentials = Credentials::new(SUITE_ACCESS_KEY, SUITE_SECRET);
        let signed = suite_sign(&credentials, "POST", "/", &[("HOST", SUITE_HOST)], b"");
        assert_eq!(signed.signature, "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b");
    }

    #[test]
    fn post_x_www_form_urlencoded_signs_the_body_and_content_type() {
        let credentials = Credentials::new(SUITE_ACCESS_KEY, SUITE_SECRET);
        let headers = [("Content-Type", "application/x-www-form-urlencoded"), ("Host", SUITE_HOST)];
        let signed = suite_sign(&credentials, "POST", "/", &headers, b"Param1=value1");
        assert_eq!(signed.signed_headers, "content-type;host;x-amz-date");
        assert!(signed
            .canonical_request
            .ends_with("\n9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e"));
        assert_eq!(signed.signature, "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a");
    }

    #[test]
    fn post_sts_header_before_signs_the_session_token() {
        const TOKEN: &str =
            "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpS\
            PfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp\
            75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvK\
            Tr4rvx3iSIlTJabIQwj2ICCR/oLxBA==";
        let credentials = Credentials::new(SUITE_ACCESS_KEY, SUITE_SECRET).with_session_token(TOKEN);
        let signed = suite_sign(&credentials, "POST", "/", &[("Host", SUITE_HOST)], b"");
        assert_eq!(signed.signed_headers, "host;x-amz-date;x-amz-security-token");
        assert_eq!(signed.signature, "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead");
        assert_eq!(header(&signed, "x-amz-security-token"), Some(TOKEN));
    }

    #[test]
    fn get_utf8_percent_encodes_the_path() {
        let credentials = Credentials::new(SUITE_ACCESS_KEY, SUITE_SECRET);
        let signed = suite_sign(&credentials, "GET", "/\u{1234}", &[("Host", SUITE_HOST)], b"");
        assert!(signed.canonical_request.starts_with("GET\n/%E1%88%B4\n\n"));
        assert_eq!(signed.signature, "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85");
    }

    // A DynamoDB GetItem as the client sends it. The expected signatures were computed
    // independently with botocore's `SigV4Auth` for the same request and time.
    const DYNAMO_BODY: &[u8] = br#"{"TableName":"usertable","Key":{"id":{"S":"user1"}}}"#;
    const DYNAMO_HEADERS: [(&str, &str); 3] = [
        ("host", "127.0.0.1:8000"),
        ("x-amz-target", "DynamoDB_20120810.GetItem"),
        ("content-type", "application/x-amz-json-1.0"),
    ];

    fn dynamo_sign(credentials: &Credentials) -> Signed {
        let params = SigningParams { credentials, region: "us-east-1", service: "dynamodb", time: suite_time() };
        sign(&params, &SignableRequest { method: "POST", path: "/", headers: &DYNAMO_HEADERS, body: DYNAMO_BODY })
    }

    #[test]
    fn dynamodb_get_item() {
        let signed = dynamo_sign(&Credentials::new(SUITE_ACCESS_KEY, SUITE_SECRET));
        assert_eq!(
            signed.canonical_request,
            "POST\n/\n\ncontent-type:application/x-amz-json-1.0\nhost:127.0.0.1:8000\n\
             x-amz-date:20150830T123600Z\nx-amz-target:DynamoDB_20120810.GetItem\n\n\
             content-type;host;x-amz-date;x-amz-target\n\
             3a4b728800b9fe150003841efcb2fa517f9cb1690102469e9e5ef4dd6794b6b4"
        );
        assert_eq!(
            signed.authorization,
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/dynamodb/aws4_request, \
             SignedHeaders=content-type;host;x-amz-date;x-amz-target, \
             Signature=6cd0a090da0567b703782e41984d8bc006d0d1fa32378650726cdc64b8ec9b1e"
        );
    }

    #[test]
    fn dynamodb_get_item_with_session_token() {
        let credentials = Credentials::new(SUITE_ACCESS_KEY, SUITE_SECRET).with_session_token("session-token-example");
        let signed = dynamo_sign(&credentials);
        assert_eq!(signed.signed_headers, "content-type;host;x-amz-date;x-amz-security-token;x-amz-target");
        assert_eq!(signed.signature, "6ee04a1ddd14015045b792707db4a67335f7ecaf14af9d65ac88ec55549997a2");
        let names: Vec<&str> = signed.headers.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, ["x-amz-date", "x-amz-security-token", "authorization"]);
    }

    #[test]
    fn headers_the_signer_owns_are_not_taken_from_the_caller() {
        let credentials = Credentials::new(SUITE_ACCESS_KEY, SUITE_SECRET);
        let headers = [("Host", SUITE_HOST), ("X-Amz-Date", "19990101T000000Z"), ("Authorization", "stale")];
        let signed = suite_sign(&credentials, "POST", "/", &headers, b"");
        assert_eq!(signed.signature, "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b");
    }

    #[test]
    fn header_values_are_trimmed_and_runs_of_spaces_folded() {
        assert_eq!(canonical_header_value("  a   b  c "), "a b c");
        assert_eq!(canonical_header_value("\tvalue\t"), "value");
        assert_eq!(canonical_header_value(""), "");
    }

    #[test]
    fn repeated_headers_are_comma_joined_in_order() {
        let credentials = Credentials::new(SUITE_ACCESS_KEY, SUITE_SECRET);
        let headers = [("Host", SUITE_HOST), ("My-Header1", "value4"), ("my-header1", "value1")];
        let signed = suite_sign(&credentials, "GET", "/", &headers, b"");
        assert!(signed.canonical_request.contains("\nmy-header1:value4,value1\n"));
        assert_eq!(signed.signed_headers, "host;my-header1;x-amz-date");
    }

    #[test]
    fn signing_key_is_deterministic_per_scope() {
        let a = signing_key(SUITE_SECRET, "20150830", "us-east-1", "service");
        assert_eq!(a, signing_key(SUITE_SECRET, "20150830", "us-east-1", "service"));
        assert_ne!(a, signing_key(SUITE_SECRET, "20150831", "us-east-1", "service"));
        assert_ne!(a, signing_key(SUITE_SECRET, "20150830", "us-west-2", "service"));
    }

    #[test]
    fn debug_output_hides_secrets() {
        let credentials = Credentials::new(SUITE_ACCESS_KEY, SUITE_SECRET).with_session_token("token-value");
        let shown = format!("{credentials:?}");
        assert!(shown.contains(SUITE_ACCESS_KEY));
        assert!(!shown.contains(SUITE_SECRET));
        assert!(!shown.contains("token-value"));
    }

    #[test]
    fn unix_seconds_to_civil_time() {
        assert_eq!(UtcDateTime::from_unix_seconds(0).amz_date(), "19700101T000000Z");
        assert_eq!(UtcDateTime::from_unix_seconds(1_440_938_160), suite_time());
        assert_eq!(UtcDateTime::from_unix_seconds(951_782_400).amz_date(), "20000229T000000Z");
        assert_eq!(UtcDateTime::from_unix_seconds(4_107_542_400).amz_date(), "21000301T000000Z");
        assert_eq!(UtcDateTime::from_unix_seconds(1_735_689_599).amz_date(), "20241231T235959Z");
        assert_eq!(UtcDateTime::from_unix_seconds(u64::MAX).amz_date(), "99991231T235959Z");
        let before_epoch = UNIX_EPOCH - std::time::Duration::from_secs(10);
        assert_eq!(UtcDateTime::from_system_time(before_epoch), UtcDateTime::from_unix_seconds(0));
    }

    #[test]
    fn invalid_civil_times_are_refused() {
        assert!(UtcDateTime::new(2015, 2, 29, 0, 0, 0).is_none());
        assert!(UtcDateTime::new(2016, 2, 29, 0, 0, 0).is_some());
        assert!(UtcDateTime::new(1900, 2, 28, 0, 0, 0).is_none());
        assert!(UtcDateTime::new(2015, 13, 1, 0, 0, 0).is_none());
        assert!(UtcDateTime::new(2015, 4, 31, 0, 0, 0).is_none());
        assert!(UtcDateTime::new(2015, 1, 1, 24, 0, 0).is_none());
    }

    proptest! {
        // Every instant maps to a valid civil time, and later instants to later times.
        #[test]
        fn civil_time_is_valid_and_monotonic(seconds in 0u64..253_402_300_799) {
            let now = UtcDateTime::from_unix_seconds(seconds);
            let rebuilt = UtcDateTime::new(now.year, now.month, now.day, now.hour, now.minute, now.second);
            prop_assert_eq!(rebuilt, Some(now));
            prop_assert!(UtcDateTime::from_unix_seconds(seconds + 1) > now);
            prop_assert_eq!(now.amz_date().len(), 16);
        }

        // Arbitrary header text never panics the signer and always yields a 64-digit signature.
        #[test]
        fn any_headers_sign(name in "[A-Za-z-]{1,20}", value in any::<String>(), body in any::<Vec<u8>>()) {
            let credentials = Credentials::new(SUITE_ACCESS_KEY, SUITE_SECRET);
            let signed = suite_sign(&credentials, "POST", "/", &[("host", SUITE_HOST), (&name, &value)], &body);
            prop_assert_eq!(signed.signature.len(), 64);
        }
    }
}
