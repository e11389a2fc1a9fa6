//! Websocket control messages (exchanges.md 2.3) and the per-connection subscription set.
//!
//! Owns the request grammar (`SUBSCRIBE`, `UNSUBSCRIBE`, `LIST_SUBSCRIPTIONS`, `SET_PROPERTY`,
//! `GET_PROPERTY`), the Binance error objects with codes 0-3, stream-name validation and the
//! streams-per-connection cap (1024 spot, 200 futures) and, through `Subs`, the USD-M rule that a
//! stream subscribed on the wrong route is acknowledged and never sent. It produces reply text only; writing to the socket, rate limiting and
//! keepalive belong to `ws.rs`.

use sonic_rs::{JsonContainerTrait, JsonValueTrait, Value};

use super::frames::push_u64;
use super::profile::{Profile, Route};
use super::{bump, Shared, Topics};

const METHODS: &str =
    "`SUBSCRIBE`, `UNSUBSCRIBE`, `LIST_SUBSCRIPTIONS`, `SET_PROPERTY`, `GET_PROPERTY`";
const KLINE_INTERVALS: [&str; 16] = [
    "1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d", "1w",
    "1M",
];

/// True for a well-formed stream name of `profile`. Names for symbols the sim does not list
/// are accepted, as on the venue, and simply never carry data.
pub(crate) fn valid_stream_name(profile: Profile, name: &str) -> bool {
    if let Some(all) = name.strip_prefix('!') {
        return matches!(all, "miniTicker@arr" | "ticker@arr" | "bookTicker")
            || ["1h", "4h", "1d"].iter().any(|w| {
                all.strip_prefix("ticker_")
                    .and_then(|r| r.strip_suffix("@arr"))
                    == Some(*w)
            });
    }
    let Some((sym, kind)) = name.split_once('@') else {
        return false;
    };
    // futures symbols keep an underscore (btcusd_perp, btcusdt_260327)
    let futures = profile.is_futures();
    let sym_ok = !sym.is_empty()
        && sym.len() <= 24
        && sym
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || (futures && b == b'_'));
    sym_ok && profile.knows_kind(kind) && valid_kind(kind)
}

fn valid_kind(kind: &str) -> bool {
    if matches!(
        kind,
        "depth"
            | "trade"
            | "aggTrade"
            | "bookTicker"
            | "ticker"
            | "miniTicker"
            | "avgPrice"
            | "markPrice"
            | "markPrice@1s"
            | "forceOrder"
    ) {
        return true;
    }
    if let Some(rest) = kind.strip_prefix("depth") {
        let (levels, speed) = rest.split_once('@').unwrap_or((rest, "1000ms"));
        return matches!(levels, "" | "5" | "10" | "20")
            && matches!(speed, "100ms" | "250ms" | "500ms" | "1000ms");
    }
    if let Some(rest) = kind.strip_prefix("kline_") {
        let interval = rest.strip_suffix("@+08:00").unwrap_or(rest);
        return KLINE_INTERVALS.contains(&interval);
    }
    if let Some(window) = kind.strip_prefix("ticker_") {
        return matches!(window, "1h" | "4h" | "1d");
    }
    false
}

/// Appends `s` as a JSON string literal.
pub(crate) fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                out.push_str("\\u00");
                let v = u32::from(c);
                for d in [v >> 4, v & 0xf] {
                    out.push(char::from_digit(d, 16).unwrap_or('0'));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Streams of one connection, in subscription order, plus its `combined` property and the
/// route it connected to (USD-M: a stream of the other route is listed but never sent).
#[derive(Debug)]
pub(crate) struct Subs {
    names: Vec<String>,
    wanted: Vec<bool>,
    /// Frames are wrapped as `{"stream":..,"data":..}` when true.
    pub combined: bool,
    profile: Profile,
    route: Route,
}

impl Subs {
    pub(crate) fn new(topics: &Topics, combined: bool, profile: Profile, route: Route) -> Subs {
        Subs {
            names: Vec::new(),
            wanted: vec![false; topics.count()],
            combined,
            profile,
            route,
        }
    }

    fn delivered(&self, name: &str) -> bool {
        let kind = name.split_once('@').map_or("", |(_, k)| k);
        self.profile.delivers(self.route, kind)
    }

    /// Whether frames of `topic` go to this connection.
    pub(crate) fn wants(&self, topic: u32) -> bool {
        self.wanted.get(topic as usize).copied().unwrap_or(false)
    }

    pub(crate) fn len(&self) -> usize {
        self.names.len()
    }

    /// Adds names (already validated); duplicates are ignored like on the venue.
    pub(crate) fn add(&mut self, topics: &Topics, name: &str) {
        if self.names.iter().any(|n| n == name) {
            return;
        }
        self.names.push(name.to_string());
        if !self.delivered(name) {
            return; // accepted and acknowledged, silently absent (the wrong USD-M route)
        }
        if let Some(t) = topics.lookup(name) {
            if let Some(w) = self.wanted.get_mut(t as usize) {
                *w = true;
                topics.add(t);
            }
        }
    }

    fn remove(&mut self, topics: &Topics, name: &str) {
        let before = self.names.len();
        self.names.retain(|n| n != name);
        if self.names.len() == before || !self.delivered(name) {
            return;
        }
        if let Some(t) = topics.lookup(name) {
            if let Some(w) = self.wanted.get_mut(t as usize) {
                *w = false;
                topics.remove(t);
            }
        }
    }

    /// Gives the subscriber counts back when the connection ends.
    pub(crate) fn release(&mut self, topics: &Topics) {
        for name in std::mem::take(&mut self.names) {
            if !self.delivered(&name) {
                continue;
            }
            if let Some(t) = topics.lookup(&name) {
                topics.remove(t);
            }
        }
        self.wanted.fill(false);
    }
}

/// Request id echoed in replies: a signed 64-bit integer, a short alphanumeric string, or null.
enum Id {
    Null,
    Int(i64),
    Str(String),
}

impl Id {
    fn parse(v: Option<&Value>) -> Option<Id> {
        let Some(v) = v else { return Some(Id::Null) };
        if v.is_null() {
            return Some(Id::Null);
        }
        if let Some(i) = v.as_i64() {
            return Some(Id::Int(i));
        }
        let s = v.as_str()?;
        let ok = !s.is_empty() && s.len() <= 36 && s.bytes().all(|b| b.is_ascii_alphanumeric());
        ok.then(|| Id::Str(s.to_string()))
    }

    fn push(&self, out: &mut String) {
        match self {
            Id::Null => out.push_str("null"),
            Id::Int(i) => {
                if *i < 0 {
                    out.push('-');
                }
                push_u64(out, i.unsigned_abs());
            }
            Id::Str(s) => push_json_str(out, s),
        }
    }
}

/// Reply to one control message.
#[derive(Debug)]
pub(crate) struct Reply {
    pub text: String,
    /// The reply is an error object.
    pub error: bool,
    /// At least one stream was added (capture playback starts on this).
    pub subscribed: bool,
}

fn error(code: u8, msg: &str, id: &Id) -> Reply {
    let mut text = String::with_capacity(msg.len() + 40);
    text.push_str("{\"code\":");
    push_u64(&mut text, u64::from(code));
    text.push_str(",\"msg\":");
    push_json_str(&mut text, msg);
    text.push_str(",\"id\":");
    id.push(&mut text);
    text.push('}');
    Reply {
        text,
        error: true,
        subscribed: false,
    }
}

fn result(raw_result: &str, id: &Id) -> Reply {
    let mut text = String::with_capacity(raw_result.len() + 32);
    text.push_str("{\"result\":");
    text.push_str(raw_result);
    text.push_str(",\"id\":");
    id.push(&mut text);
    text.push('}');
    Reply {
        text,
        error: false,
        subscribed: false,
    }
}

/// Answers one text frame from a client, updating its subscriptions.
pub(crate) fn handle(text: &str, subs: &mut Subs, shared: &Shared) -> Reply {
    bump(&shared.stats.control_messages);
    let reply = dispatch(text, subs, shared);
    if reply.error {
        bump(&shared.stats.control_errors);
    }
    reply
}

fn dispatch(text: &str, subs: &mut Subs, shared: &Shared) -> Reply {
    let (topics, profile) = (&shared.topics, shared.profile);
    let max_streams = profile.max_streams();
    let value: Value = match sonic_rs::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            let msg = format!(
                "Invalid JSON: expected value at line {} column {}",
                e.line(),
                e.column()
            );
            return error(3, &msg, &Id::Null);
        }
    };
    if !value.is_object() {
        return error(2, "Invalid request: expected a JSON object", &Id::Null);
    }
    let Some(id) = Id::parse(value.get("id")) else {
        return error(
            2,
            "Invalid request: request ID must be an unsigned integer",
            &Id::Null,
        );
    };
    let Some(method) = value.get("method") else {
        return error(2, "Invalid request: missing field `method`", &id);
    };
    let Some(method) = method.as_str() else {
        return error(2, "Invalid request: method must be a string", &id);
    };
    let params = value.get("params");
    match method {
        "SUBSCRIBE" | "UNSUBSCRIBE" => {
            let names = match stream_params(profile, params) {
                Ok(n) => n,
                Err(msg) => return error(2, &msg, &id),
            };
            if method == "UNSUBSCRIBE" {
                for n in &names {
                    subs.remove(topics, n);
                }
                return result("null", &id);
            }
            let fresh = names
                .iter()
                .filter(|n| !subs.names.iter().any(|s| s == *n))
                .count();
            if subs.len() + fresh > max_streams {
                let msg = if max_streams == 200 {
                    "Invalid request: too many streams (at most 200)"
                } else {
                    "Invalid request: too many streams (at most 1024)"
                };
                return error(2, msg, &id);
            }
            if let Some(refused) = refused_symbol(&names, shared) {
                // Injected refusal: the other streams are still subscribed (per stream, as
                // for OKX) so a sharded client's other symbols keep flowing.
                for n in names.iter().filter(|n| stream_symbol(n) != refused) {
                    subs.add(topics, n);
                }
                let msg = format!("Invalid request: subscription to {refused} streams refused");
                return error(2, &msg, &id);
            }
            for n in &names {
                subs.add(topics, n);
            }
            let mut reply = result("null", &id);
            reply.subscribed = !names.is_empty();
            reply
        }
        "LIST_SUBSCRIPTIONS" => {
            let mut list = String::from("[");
            for (i, n) in subs.names.iter().enumerate() {
                if i > 0 {
                    list.push(',');
                }
                push_json_str(&mut list, n);
            }
            list.push(']');
            result(&list, &id)
        }
        "SET_PROPERTY" | "GET_PROPERTY" => property(method == "SET_PROPERTY", params, subs, &id),
        other => {
            let msg =
                format!("Invalid request: unknown variant `{other}`, expected one of {METHODS}");
            error(2, &msg, &id)
        }
    }
}

/// `btcusdt` of `btcusdt@depth@100ms`.
fn stream_symbol(name: &str) -> &str {
    name.split_once('@').map_or(name, |(s, _)| s)
}

/// The symbol (lowercase, as in stream names) of a stream whose subscription an injected
/// fault refuses; consumes the refusal.
fn refused_symbol<'a>(names: &'a [String], shared: &Shared) -> Option<&'a str> {
    names
        .iter()
        .map(|n| stream_symbol(n))
        .find(|s| shared.faults.take_refusal(s))
}

fn stream_params(profile: Profile, params: Option<&Value>) -> Result<Vec<String>, String> {
    let Some(list) = params.and_then(|p| p.as_array()) else {
        return Err("Invalid request: `params` must be an array of stream names".to_string());
    };
    if list.len() > profile.max_streams() {
        return Err("Invalid request: too many parameters".to_string());
    }
    list.iter()
        .map(|v| match v.as_str() {
            Some(s) if valid_stream_name(profile, s) => Ok(s.to_string()),
            Some(s) => Err(format!("Invalid request: invalid stream name `{s}`")),
            None => Err("Invalid request: stream names must be strings".to_string()),
        })
        .collect()
}

fn property(set: bool, params: Option<&Value>, subs: &mut Subs, id: &Id) -> Reply {
    let Some(list) = params.and_then(|p| p.as_array()) else {
        return error(2, "Invalid request: `params` must be an array", id);
    };
    let want = if set { 2 } else { 1 };
    if list.len() > want {
        return error(2, "Invalid request: too many parameters", id);
    }
    let Some(name) = list.first().and_then(|v| v.as_str()) else {
        return error(2, "Invalid request: property name must be a string", id);
    };
    if name != "combined" {
        return error(0, "Unknown property", id);
    }
    if !set {
        return result(if subs.combined { "true" } else { "false" }, id);
    }
    match list.get(1).and_then(JsonValueTrait::as_bool) {
        Some(b) => {
            subs.combined = b;
            result("null", id)
        }
        None => error(1, "Invalid value type: expected Boolean", id),
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn test_control_stream_names() {
        for ok in [
            "btcusdt@depth",
            "btcusdt@depth@100ms",
            "btcusdt@depth5@100ms",
            "nknusdt@kline_1m",
            "btcusdt@aggTrade",
            "!miniTicker@arr",
        ] {
            assert!(valid_stream_name(Profile::Spot, ok), "{ok}");
        }
        for bad in [
            "BTCUSDT@trade",
            "btcusdt",
            "btcusdt@depth@10ms",
            "@trade",
            "btcusdt@foo",
        ] {
            assert!(!valid_stream_name(Profile::Spot, bad), "{bad}");
        }
        for ok in [
            "btcusd_perp@depth@100ms",
            "btcusdt@markPrice@1s",
            "ethusd_210924@forceOrder",
        ] {
            assert!(valid_stream_name(Profile::CoinM, ok), "{ok}");
        }
        for bad in ["btcusdt@markPrice@1s", "btcusd_perp@trade"] {
            assert!(!valid_stream_name(Profile::Spot, bad), "{bad}");
        }
    }

    #[test]
    fn test_control_json_escape() {
        let mut s = String::new();
        push_json_str(&mut s, "a\"b\\\u{1}");
        assert_eq!(s, r#""a\"b\\\u0001""#);
    }
}
