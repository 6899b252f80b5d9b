//! `procsync bench --json`: the report as one JSON document, for scripts that compare
//! runs (procsync-bench/README.md, "JSON output").
//!
//! What it owns: the document's shape and its stable field names, and the description
//! of the machine ([`Machine`]). What it must not do: measure anything, or print (the
//! caller writes the string where it wants).
//!
//! The document is an object: `machine` (CPU model, CPUs usable and online, kernel,
//! load average, procsync version) and `results`, an array with one object per row of
//! the table, with the stable fields `scenario`, `impl`, `baseline`, `measure`,
//! `median_ns`, `p99_ns` (`null` for paired rows), `ratio`, `p25`, `p75` (`null` for
//! latency rows), plus `baseline_median_ns`, `baseline_p99_ns` and `n` (rounds of a
//! paired row, samples per side of a latency row), and for the contention rows `extra`:
//! `{"figure": [procsync, baseline], …}` (acquisitions per second, owner changes per
//! 1 000 acquisitions, context switches per acquisition, fairness max/min; `null` where
//! infinite, i.e. a process never got the lock). Every `*_ns` is nanoseconds per
//! operation (paired rows: the median over rounds) or per sample (latency rows);
//! `ratio` is procsync / baseline (paired rows: the median of the per-round ratios,
//! `p25`/`p75` their quartiles). A latency scenario is one object (its median and p99
//! are two rows of the printed table). `notes` lists what the run left out and why
//! (e.g. the `etcd/…` rows without an etcd binary), as strings.

use std::fmt::Write as _;

use super::{Report, allowed_cpus};

/// What the report says about the machine it ran on.
#[derive(Clone, Debug)]
pub struct Machine {
    /// `model name` of `/proc/cpuinfo`.
    pub cpu: String,
    /// CPUs this process may run on.
    pub cpus_usable: usize,
    /// CPUs online (`available_parallelism` ignores affinity only on some systems, so
    /// this is counted from `/proc/cpuinfo`).
    pub cpus_online: usize,
    /// Kernel release.
    pub kernel: String,
    /// 1, 5 and 15 minute load averages.
    pub load_average: [f64; 3],
}

impl Machine {
    /// Reads the machine's description from `/proc` and `uname`.
    pub fn probe() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
            .unwrap_or_else(|| "unknown CPU".into());
        let cpus_online = cpuinfo
            .lines()
            .filter(|l| l.starts_with("processor"))
            .count();
        let mut load_average = [f64::NAN; 3];
        if let Ok(s) = std::fs::read_to_string("/proc/loadavg") {
            for (slot, v) in load_average.iter_mut().zip(s.split_whitespace()) {
                *slot = v.parse().unwrap_or(f64::NAN);
            }
        }
        Machine {
            cpu,
            cpus_usable: allowed_cpus().len(),
            cpus_online,
            kernel: rustix::system::uname()
                .release()
                .to_string_lossy()
                .into_owned(),
            load_average,
        }
    }
}

impl Report {
    /// The report as a JSON document (see the module doc for its shape).
    pub fn to_json(&self, machine: &Machine, run: &str) -> String {
        let mut out = String::from("{\n  \"machine\": {");
        let _ = write!(
            out,
            "\"cpu\": {}, \"cpus_usable\": {}, \"cpus_online\": {}, \"kernel\": {}, \
             \"load_average\": [{}], \"procsync_version\": {}, \"run\": {}",
            string(&machine.cpu),
            machine.cpus_usable,
            machine.cpus_online,
            string(&machine.kernel),
            machine
                .load_average
                .iter()
                .map(|&l| number(Some(l)))
                .collect::<Vec<_>>()
                .join(", "),
            string(env!("CARGO_PKG_VERSION")),
            string(run),
        );
        out.push_str("},\n  \"results\": [");
        let rows: Vec<_> = self.rows.iter().filter(|r| r.in_json).collect();
        for (i, r) in rows.iter().enumerate() {
            out.push_str(if i == 0 { "\n    {" } else { ",\n    {" });
            let measure = r
                .measure
                .strip_suffix(" median")
                .unwrap_or(&r.measure)
                .to_string();
            let fields = [
                ("scenario", string(&r.group)),
                ("impl", string(&r.subject)),
                ("baseline", string(&r.baseline)),
                ("measure", string(&measure)),
                ("median_ns", number(Some(r.subject_ns))),
                ("p99_ns", number(r.p99.map(|p| p.0))),
                ("ratio", number(Some(r.ratio))),
                ("p25", number(r.spread.map(|s| s.0))),
                ("p75", number(r.spread.map(|s| s.1))),
                ("baseline_median_ns", number(Some(r.baseline_ns))),
                ("baseline_p99_ns", number(r.p99.map(|p| p.1))),
                ("n", r.n.to_string()),
            ];
            let mut body: Vec<String> = fields
                .iter()
                .map(|(k, v)| format!("\"{k}\": {v}"))
                .collect();
            if !r.extras.is_empty() {
                let extras: Vec<String> = r
                    .extras
                    .iter()
                    .map(|(k, x, y)| {
                        format!("\"{k}\": [{}, {}]", number(Some(*x)), number(Some(*y)))
                    })
                    .collect();
                body.push(format!("\"extra\": {{{}}}", extras.join(", ")));
            }
            out.push_str(&body.join(", "));
            out.push('}');
        }
        out.push_str("\n  ],\n  \"notes\": [");
        let notes: Vec<String> = self.notes.iter().map(|n| string(n)).collect();
        out.push_str(&notes.join(", "));
        out.push_str("]\n}\n");
        out
    }
}

/// A JSON string literal.
fn string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    write_json_string(&mut out, s);
    out
}

/// Appends `s` to `out` as a JSON string literal: quoted, with `"`, `\` and the
/// control characters escaped, everything else (any Unicode) as it is. The one JSON
/// string escaper of the workspace: the `procsync` command's `--json` outputs use it too.
pub fn write_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A JSON number, or `null` for none and for what JSON cannot hold (NaN, infinities).
fn number(v: Option<f64>) -> String {
    match v {
        Some(x) if x.is_finite() => {
            let s = format!("{x:.4}");
            let s = s.trim_end_matches('0').trim_end_matches('.');
            if s.is_empty() || s == "-" {
                "0".into()
            } else {
                s.to_string()
            }
        }
        _ => "null".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::{number, string};

    #[test]
    fn numbers_and_strings_are_valid_json() {
        assert_eq!(number(Some(1.5)), "1.5");
        assert_eq!(number(Some(2.0)), "2");
        assert_eq!(number(Some(0.0)), "0");
        assert_eq!(number(Some(1234.56789)), "1234.5679");
        assert_eq!(number(None), "null");
        assert_eq!(number(Some(f64::NAN)), "null");
        assert_eq!(number(Some(f64::INFINITY)), "null");
        assert_eq!(string("a\"b\\c\n\u{1}"), "\"a\\\"b\\\\c\\n\\u0001\"");
        assert_eq!(string("Intel® Xeon µs"), "\"Intel® Xeon µs\"");
    }
}
