//! `procsync bench --json` (procsync-bench/README.md, "JSON output"): the document parses, says
//! what machine it ran on, and every scenario row that ran has every stable field with a number
//! where a number is due. No timing is asserted: a benchmark's figures are not a test's
//! business.
//!
//! The run is short (`--quick`, and `--only` a few cheap scenarios); the JSON is read by
//! the small parser below (the test needs no JSON library).

#[path = "procs/harness.rs"]
mod harness;

use std::collections::BTreeMap;
use std::time::Duration;

use harness::{Root, run_with_deadline};

/// The fields every result carries (procsync-bench/src/json.rs).
const STABLE: [&str; 9] = [
    "scenario",
    "impl",
    "baseline",
    "measure",
    "median_ns",
    "p99_ns",
    "ratio",
    "p25",
    "p75",
];

#[test]
fn bench_json_parses_and_every_scenario_has_numbers() {
    let root = Root::fresh();
    let mut cmd = root.command();
    cmd.args([
        "bench",
        "--json",
        "--quick",
        "--only",
        "mutex/uncontended",
        "--only",
        "event/set-wait0",
        "--only",
        "contention/mutex-2-procs",
        "--only",
        "contention/mutex-8-procs",
        "--only",
        "contention/semaphore-2-procs",
        "--only",
        "contention/mutex-2-threads",
        "--only",
        "fanout/1-waiters",
        "--only",
        "fanout/64-waiters",
        "--only",
        "names/open-close",
        "--only",
        "scale/1000-objects",
        "--only",
        "etcd/",
        "--only",
        "async/wake",
        "--only",
        "async/pending",
    ]);
    let (status, stdout, stderr) = run_with_deadline(&mut cmd, Duration::from_secs(120));
    let report = format!("---- stdout ----\n{stdout}\n---- stderr ----\n{stderr}");
    assert!(
        status.is_some_and(|s| s.success()),
        "`procsync bench --json` ended with {status:?}\n{report}"
    );
    let doc = Parser::new(&stdout)
        .document()
        .unwrap_or_else(|e| panic!("the output is not JSON: {e}\n{report}"));
    let top = doc.object().expect("the document is an object");

    let machine = top
        .get("machine")
        .and_then(Json::object)
        .expect("a `machine` object");
    for key in ["cpu", "kernel"] {
        assert!(
            machine.get(key).and_then(Json::string).is_some(),
            "machine.{key} is a string\n{report}"
        );
    }
    for key in ["cpus_usable", "cpus_online"] {
        let n = machine.get(key).and_then(Json::number);
        assert!(
            n.is_some_and(|n| n >= 1.0),
            "machine.{key} ≥ 1, got {n:?}\n{report}"
        );
    }
    let load = machine
        .get("load_average")
        .and_then(Json::array)
        .expect("machine.load_average is an array");
    assert_eq!(load.len(), 3, "three load averages\n{report}");

    let results = top
        .get("results")
        .and_then(Json::array)
        .expect("a `results` array");
    let mut scenarios = Vec::new();
    for r in results {
        let r = r.object().expect("each result is an object");
        for key in STABLE {
            assert!(
                r.contains_key(key),
                "result without `{key}`: {r:?}\n{report}"
            );
        }
        let text = |k: &str| {
            r[k].string()
                .unwrap_or_else(|| panic!("{k} is a string: {r:?}"))
        };
        let scenario = text("scenario");
        text("impl");
        text("baseline");
        text("measure");
        for key in ["median_ns", "ratio", "baseline_median_ns"] {
            let v = r.get(key).and_then(Json::number);
            assert!(
                v.is_some_and(|v| v > 0.0 && v.is_finite()),
                "{scenario}: `{key}` must be a positive number, got {:?}\n{report}",
                r.get(key)
            );
        }
        // Paired rows: quartiles of the ratio, no p99; both are numbers or both null.
        let (p25, p75) = (r["p25"].number(), r["p75"].number());
        assert_eq!(
            p25.is_some(),
            p75.is_some(),
            "{scenario}: p25 and p75\n{report}"
        );
        if let (Some(a), Some(b)) = (p25, p75) {
            assert!(a <= b, "{scenario}: p25 {a} > p75 {b}\n{report}");
            assert!(r["p99_ns"].is_null(), "{scenario}: paired rows have no p99");
        } else {
            // Latency rows: a p99 at least the median.
            let (median, p99) = (r["median_ns"].number(), r["p99_ns"].number());
            assert!(
                p99.zip(median).is_some_and(|(p, m)| p >= m),
                "{scenario}: a latency row needs p99_ns ≥ median_ns\n{report}"
            );
        }
        if scenario.starts_with("contention/") {
            let extra = r
                .get("extra")
                .and_then(Json::object)
                .unwrap_or_else(|| panic!("{scenario}: no `extra` object\n{report}"));
            for key in [
                "acquisitions_per_s",
                "owner_changes_per_1000",
                "ctx_switches_per_acquisition",
                "fairness_max_min",
            ] {
                let pair = extra.get(key).and_then(Json::array);
                assert!(
                    pair.is_some_and(
                        |p| p.len() == 2 && p.iter().all(|v| v.number().is_some() || v.is_null())
                    ),
                    "{scenario}: extra.{key} must be [procsync, baseline]\n{report}"
                );
            }
            let rate = extra["acquisitions_per_s"].array().expect("checked")[0].number();
            assert!(
                rate.is_some_and(|r| r > 0.0),
                "{scenario}: procsync made no acquisitions\n{report}"
            );
        }
        scenarios.push(scenario.to_string());
    }
    // The contention rows (procsync-bench/README.md, "Scenarios"): each scenario against its
    // barging baseline and the FIFO lock, both of which made acquisitions too.
    for (want, barging) in [
        ("contention/mutex-2-procs", "pthread-robust"),
        ("contention/mutex-8-procs", "pthread-robust"),
        ("contention/semaphore-2-procs", "posix-sem-pshared"),
        ("contention/mutex-2-threads", "pthread-robust"),
    ] {
        let mut baselines: Vec<&str> = results
            .iter()
            .filter_map(Json::object)
            .filter(|r| r["scenario"].string() == Some(want))
            .map(|r| {
                let rate = r["extra"].object().expect("checked")["acquisitions_per_s"]
                    .array()
                    .expect("checked")[1]
                    .number();
                assert!(
                    rate.is_some_and(|r| r > 0.0),
                    "{want}: the baseline made no acquisitions\n{report}"
                );
                r["baseline"].string().expect("a string")
            })
            .collect();
        baselines.sort_unstable();
        assert_eq!(
            baselines,
            ["fifo-futex-lock", barging],
            "{want}: its baselines\n{report}"
        );
    }
    // The etcd rows (README.md, "Scenarios"): there when an etcd binary is, each against
    // etcd's own lock recipe; otherwise absent, and a note says why.
    let etcd = ["etcd/uncontended", "etcd/hand-off", "etcd/wait-all-8"];
    let have_etcd = procsync_etcd::testing::etcd_available("bench_json: the etcd rows");
    for want in etcd {
        let rows: Vec<_> = results
            .iter()
            .filter_map(Json::object)
            .filter(|r| r["scenario"].string() == Some(want))
            .collect();
        if have_etcd {
            assert!(!rows.is_empty(), "no result for `{want}`\n{report}");
            for r in rows {
                assert_eq!(r["impl"].string(), Some("procsync-etcd-mutex"), "{r:?}");
                assert_eq!(r["baseline"].string(), Some("etcd-recipe-lock"), "{r:?}");
            }
        } else {
            assert!(rows.is_empty(), "`{want}` without an etcd binary\n{report}");
        }
    }
    let notes = top
        .get("notes")
        .and_then(Json::array)
        .expect("a `notes` array");
    assert_eq!(
        !have_etcd,
        notes
            .iter()
            .any(|n| n.string().is_some_and(|n| n.contains("no etcd binary"))),
        "a note says the etcd rows were left out exactly when they were\n{report}"
    );
    for want in [
        "mutex/uncontended",
        "event/set-wait0",
        "contention/mutex-2-procs",
        "contention/mutex-8-procs",
        "contention/semaphore-2-procs",
        "contention/mutex-2-threads",
        "fanout/1-waiters",
        "fanout/64-waiters",
        "names/open-close",
        "scale/1000-objects",
        "async/wake",
        "async/pending",
    ] {
        assert!(
            scenarios.iter().any(|s| s == want),
            "no result for `{want}` (got {scenarios:?})\n{report}"
        );
    }
    // `--only` keeps exactly the scenarios asked for (and `event/set-reset`, measured with
    // `set-wait0` in one step).
    for got in &scenarios {
        assert!(
            [
                "mutex/uncontended",
                "event/set-wait0",
                "event/set-reset",
                "contention/mutex-2-procs",
                "contention/mutex-8-procs",
                "contention/semaphore-2-procs",
                "contention/mutex-2-threads",
                "fanout/1-waiters",
                "fanout/64-waiters",
                "names/open-close",
                "scale/1000-objects",
                "etcd/uncontended",
                "etcd/hand-off",
                "etcd/wait-all-8",
                "async/wake",
                "async/pending",
            ]
            .contains(&got.as_str()),
            "`{got}` ran although `--only` did not ask for it\n{report}"
        );
    }
    // The fair floor (procsync-bench/README.md, "Scenarios") is among the set-wait0 baselines.
    assert!(
        results.iter().any(|r| {
            let r = r.object().expect("object");
            r["scenario"].string() == Some("event/set-wait0")
                && r["baseline"].string() == Some("atomic-set-take")
        }),
        "no `event/set-wait0` row against the atomic floor\n{report}"
    );
}

// ---------------------------------------------------------------------------------------------
// A small JSON parser (RFC 8259 values; enough to check a document, not a general library).

#[derive(Debug, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    Number(f64),
    String(String),
    Array(Vec<Json>),
    Object(BTreeMap<String, Json>),
}

impl Json {
    fn object(&self) -> Option<&BTreeMap<String, Json>> {
        match self {
            Json::Object(m) => Some(m),
            _ => None,
        }
    }
    fn array(&self) -> Option<&Vec<Json>> {
        match self {
            Json::Array(v) => Some(v),
            _ => None,
        }
    }
    fn string(&self) -> Option<&str> {
        match self {
            Json::String(s) => Some(s),
            _ => None,
        }
    }
    fn number(&self) -> Option<f64> {
        match self {
            Json::Number(n) => Some(*n),
            _ => None,
        }
    }
    fn is_null(&self) -> bool {
        *self == Json::Null
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Parser<'a> {
    fn new(s: &'a str) -> Parser<'a> {
        Parser {
            s: s.as_bytes(),
            i: 0,
        }
    }

    fn document(&mut self) -> Result<Json, String> {
        let v = self.value()?;
        self.ws();
        if self.i != self.s.len() {
            return Err(format!("trailing text at byte {}", self.i));
        }
        Ok(v)
    }

    fn ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> Result<(), String> {
        self.ws();
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            Ok(())
        } else {
            Err(format!("expected `{}` at byte {}", c as char, self.i))
        }
    }

    fn value(&mut self) -> Result<Json, String> {
        self.ws();
        match self.s.get(self.i) {
            Some(b'{') => self.object(),
            Some(b'[') => self.array(),
            Some(b'"') => self.string().map(Json::String),
            Some(b't') => self.word("true", Json::Bool(true)),
            Some(b'f') => self.word("false", Json::Bool(false)),
            Some(b'n') => self.word("null", Json::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => Err(format!("unexpected input at byte {}", self.i)),
        }
    }

    fn word(&mut self, w: &str, v: Json) -> Result<Json, String> {
        if self.s[self.i..].starts_with(w.as_bytes()) {
            self.i += w.len();
            Ok(v)
        } else {
            Err(format!("bad literal at byte {}", self.i))
        }
    }

    fn number(&mut self) -> Result<Json, String> {
        let start = self.i;
        while self.i < self.s.len()
            && matches!(
                self.s[self.i],
                b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9'
            )
        {
            self.i += 1;
        }
        let text = std::str::from_utf8(&self.s[start..self.i]).map_err(|e| e.to_string())?;
        let valid = {
            let t = text.strip_prefix('-').unwrap_or(text);
            !t.is_empty() && (t == "0" || !t.starts_with('0') || t.starts_with("0."))
        };
        if !valid {
            return Err(format!("bad number `{text}` at byte {start}"));
        }
        text.parse()
            .map(Json::Number)
            .map_err(|e| format!("bad number `{text}`: {e}"))
    }

    fn string(&mut self) -> Result<String, String> {
        self.eat(b'"')?;
        let mut out = Vec::new();
        loop {
            let Some(&c) = self.s.get(self.i) else {
                return Err("unterminated string".into());
            };
            self.i += 1;
            match c {
                b'"' => break,
                b'\\' => {
                    let e = *self.s.get(self.i).ok_or("unterminated escape")?;
                    self.i += 1;
                    match e {
                        b'"' | b'\\' | b'/' => out.push(e),
                        b'n' => out.push(b'\n'),
                        b't' => out.push(b'\t'),
                        b'r' => out.push(b'\r'),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'u' => {
                            let hex = self.s.get(self.i..self.i + 4).ok_or("short \\u escape")?;
                            let code = u32::from_str_radix(
                                std::str::from_utf8(hex).map_err(|e| e.to_string())?,
                                16,
                            )
                            .map_err(|e| e.to_string())?;
                            self.i += 4;
                            let ch = char::from_u32(code).unwrap_or('\u{fffd}');
                            out.extend_from_slice(ch.to_string().as_bytes());
                        }
                        _ => return Err(format!("bad escape at byte {}", self.i)),
                    }
                }
                c if c < 0x20 => return Err(format!("control character at byte {}", self.i)),
                c => out.push(c),
            }
        }
        String::from_utf8(out).map_err(|e| e.to_string())
    }

    fn array(&mut self) -> Result<Json, String> {
        self.eat(b'[')?;
        let mut v = Vec::new();
        self.ws();
        if self.s.get(self.i) == Some(&b']') {
            self.i += 1;
            return Ok(Json::Array(v));
        }
        loop {
            v.push(self.value()?);
            self.ws();
            match self.s.get(self.i) {
                Some(b',') => self.i += 1,
                Some(b']') => {
                    self.i += 1;
                    return Ok(Json::Array(v));
                }
                _ => return Err(format!("expected `,` or `]` at byte {}", self.i)),
            }
        }
    }

    fn object(&mut self) -> Result<Json, String> {
        self.eat(b'{')?;
        let mut m = BTreeMap::new();
        self.ws();
        if self.s.get(self.i) == Some(&b'}') {
            self.i += 1;
            return Ok(Json::Object(m));
        }
        loop {
            self.ws();
            let k = self.string()?;
            self.eat(b':')?;
            let v = self.value()?;
            if m.insert(k.clone(), v).is_some() {
                return Err(format!("duplicate key `{k}`"));
            }
            self.ws();
            match self.s.get(self.i) {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    return Ok(Json::Object(m));
                }
                _ => return Err(format!("expected `,` or `}}` at byte {}", self.i)),
            }
        }
    }
}

#[test]
fn the_parser_rejects_what_is_not_json() {
    for bad in [
        "",
        "{",
        "[1,]",
        "{\"a\" 1}",
        "01",
        "nul",
        "\"a",
        "{} x",
        "[NaN]",
    ] {
        assert!(Parser::new(bad).document().is_err(), "accepted {bad:?}");
    }
    let ok = Parser::new(r#"{"a": [1, -2.5e3, null, true, "x\"\u00b5"], "b": {}}"#)
        .document()
        .expect("valid");
    let a = ok.object().unwrap()["a"].array().unwrap();
    assert_eq!(a[1], Json::Number(-2500.0));
    assert_eq!(a[4], Json::String("x\"µ".into()));
}
