//! `sweep`: steps the offered rate of a paced scenario up (×`factor` per step) and records
//! throughput and latency at each step, until the server stops following (throughput below
//! `follow` × offered) or its p99 passes a bound. Each step is a whole run of the scenario
//! against a fresh server (so the database and the relay start empty each time); the step
//! function decides how. [`SweepReport::plot`] draws p99 against throughput, one line per
//! target, with log-scale axes.

use std::future::Future;
use std::time::Duration;

use serde::Serialize;

use super::ScenarioError;
use super::persisted::PersistedReport;
use crate::plot::{Plot, Series};
use crate::report::{Machine, OtrRelayReport, machine_line};

/// How to step.
#[derive(Debug, Clone, Copy)]
pub struct SweepSpec {
    /// The first step's offered rate, messages/s.
    pub start_rate: f64,
    /// Each step offers this many times the previous one.
    pub factor: f64,
    /// At most this many steps.
    pub max_steps: usize,
    /// Stop after a step whose leading target's p99 is above this.
    pub p99_bound: Duration,
    /// Stop after a step whose leading target delivered less than this share of the offered
    /// rate.
    pub follow: f64,
}

/// One target at one step.
#[derive(Debug, Clone, Serialize)]
pub struct SweepPoint {
    /// What was measured (`otr-relay: sotto`, `persisted: sotto (ack)`, ...).
    pub target: String,
    /// Offered messages/s.
    pub offered_per_sec: f64,
    /// Delivered (or acknowledged) messages/s.
    pub throughput_per_sec: f64,
    /// Median latency, µs.
    pub p50_us: f64,
    /// 99th percentile latency, µs.
    pub p99_us: f64,
    /// Target CPU seconds over the step.
    pub cpu_secs: f64,
}

/// One scenario's sweep.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioSweep {
    /// `otr-relay` or `persisted`.
    pub scenario: String,
    /// Load averages before and after.
    pub machine: Machine,
    /// Every step's points; the first point of a step is the leading target (Sotto).
    pub steps: Vec<Vec<SweepPoint>>,
    /// Why the sweep ended.
    pub stopped: String,
}

/// The `sweep` command's report.
#[derive(Debug, Clone, Serialize)]
pub struct SweepReport {
    /// Always `sweep`.
    pub scenario: &'static str,
    /// Starting rate, messages/s.
    pub start_rate: f64,
    /// Step factor.
    pub factor: f64,
    /// The p99 bound, ms.
    pub p99_bound_ms: f64,
    /// The share of the offered rate the leading target must deliver.
    pub follow: f64,
    /// One per scenario swept.
    pub sweeps: Vec<ScenarioSweep>,
}

/// Runs `step(rate)` at `start_rate`, `start_rate × factor`, ... and stops as the spec says.
pub async fn sweep<F, Fut>(
    scenario: &str,
    spec: &SweepSpec,
    progress: bool,
    mut step: F,
) -> Result<ScenarioSweep, ScenarioError>
where
    F: FnMut(f64) -> Fut,
    Fut: Future<Output = Result<Vec<SweepPoint>, ScenarioError>>,
{
    let mut machine = Machine::now();
    let mut steps = Vec::new();
    let mut rate = spec.start_rate;
    let mut stopped = format!("reached {} steps", spec.max_steps);
    for index in 0..spec.max_steps {
        if progress {
            eprintln!("sweep {scenario}: step {} at {rate:.0} msg/s", index + 1);
        }
        let points = step(rate).await?;
        let verdict = points.first().and_then(|lead| verdict(spec, lead));
        steps.push(points);
        if let Some(reason) = verdict {
            stopped = reason;
            break;
        }
        rate *= spec.factor;
    }
    machine.finish();
    Ok(ScenarioSweep {
        scenario: scenario.to_owned(),
        machine,
        steps,
        stopped,
    })
}

/// Why a step ends the sweep, if it does.
fn verdict(spec: &SweepSpec, lead: &SweepPoint) -> Option<String> {
    let bound_us = spec.p99_bound.as_secs_f64() * 1e6;
    if lead.throughput_per_sec < spec.follow * lead.offered_per_sec {
        Some(format!(
            "{} delivered {:.0}/s of {:.0}/s offered (< {:.0}%)",
            lead.target,
            lead.throughput_per_sec,
            lead.offered_per_sec,
            spec.follow * 100.0
        ))
    } else if lead.p99_us > bound_us {
        Some(format!(
            "{} p99 {:.1} ms > {:.1} ms at {:.0}/s offered",
            lead.target,
            lead.p99_us / 1000.0,
            bound_us / 1000.0,
            lead.offered_per_sec
        ))
    } else {
        None
    }
}

/// The points of an `otr-relay` run (Sotto first, then the forwarder).
pub fn relay_points(report: &OtrRelayReport, offered: f64) -> Vec<SweepPoint> {
    report
        .results
        .iter()
        .map(|r| SweepPoint {
            target: format!("otr-relay: {}", r.target),
            offered_per_sec: offered,
            throughput_per_sec: r.delivered_per_sec,
            p50_us: r.latency.p50_us,
            p99_us: r.latency.p99_us,
            cpu_secs: r.cost.cpu_secs,
        })
        .collect()
}

/// The points of a `persisted` run: acknowledgements first (the leading figure), then fan-out.
pub fn persisted_points(report: &PersistedReport, offered: f64) -> Vec<SweepPoint> {
    vec![
        SweepPoint {
            target: "persisted: sotto (ack)".into(),
            offered_per_sec: offered,
            throughput_per_sec: report.acknowledged_per_sec,
            p50_us: report.ack_latency.p50_us,
            p99_us: report.ack_latency.p99_us,
            cpu_secs: report.cost.cpu_secs,
        },
        SweepPoint {
            target: "persisted: sotto (fan-out)".into(),
            offered_per_sec: offered,
            throughput_per_sec: report.fanned_out_per_sec,
            p50_us: report.fanout_latency.p50_us,
            p99_us: report.fanout_latency.p99_us,
            cpu_secs: report.cost.cpu_secs,
        },
    ]
}

impl SweepReport {
    /// p99 (ms) against throughput (messages/s), one line per target.
    pub fn plot(&self) -> Plot {
        let mut series: Vec<Series> = Vec::new();
        for point in self.sweeps.iter().flat_map(|s| s.steps.iter().flatten()) {
            let xy = (point.throughput_per_sec, point.p99_us / 1000.0);
            match series.iter_mut().find(|s| s.label == point.target) {
                Some(line) => line.points.push(xy),
                None => series.push(Series {
                    label: point.target.clone(),
                    points: vec![xy],
                }),
            }
        }
        Plot {
            title: "Sotto: p99 latency against throughput (offered rate ×1.5 per step)".into(),
            x_label: "throughput, messages/s (log)".into(),
            y_label: "p99 latency, ms (log)".into(),
            series,
        }
    }

    /// The markdown summary: one table per scenario.
    pub fn markdown(&self) -> String {
        let mut out = format!(
            "## sweep: from {:.0} msg/s, ×{} per step, until throughput < {:.0}% of offered or p99 > {:.0} ms\n",
            self.start_rate,
            self.factor,
            self.follow * 100.0,
            self.p99_bound_ms
        );
        for sweep in &self.sweeps {
            out.push_str(&format!("\n### {}\n\n", sweep.scenario));
            out.push_str(&machine_line(&sweep.machine));
            out.push_str("\n| offered/s | target | throughput/s | p50 ms | p99 ms | target CPU s |\n|---|---|---|---|---|---|\n");
            for point in sweep.steps.iter().flatten() {
                out.push_str(&format!(
                    "| {:.0} | {} | {:.0} | {:.2} | {:.2} | {:.2} |\n",
                    point.offered_per_sec,
                    point.target,
                    point.throughput_per_sec,
                    point.p50_us / 1000.0,
                    point.p99_us / 1000.0,
                    point.cpu_secs
                ));
            }
            out.push_str(&format!("\nStopped: {}.\n", sweep.stopped));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(offered: f64, throughput: f64, p99_ms: f64) -> SweepPoint {
        SweepPoint {
            target: "t".into(),
            offered_per_sec: offered,
            throughput_per_sec: throughput,
            p50_us: 1.0,
            p99_us: p99_ms * 1000.0,
            cpu_secs: 0.0,
        }
    }

    #[tokio::test]
    async fn steps_up_until_throughput_stops_following() {
        let spec = SweepSpec {
            start_rate: 100.0,
            factor: 2.0,
            max_steps: 10,
            p99_bound: Duration::from_millis(50),
            follow: 0.9,
        };
        // A target that saturates at 500/s.
        let result = sweep("fake", &spec, false, |rate| async move {
            Ok(vec![point(rate, rate.min(500.0), 1.0)])
        })
        .await
        .expect("sweeps");
        let offered: Vec<f64> = result.steps.iter().map(|s| s[0].offered_per_sec).collect();
        assert_eq!(offered, vec![100.0, 200.0, 400.0, 800.0]);
        assert!(result.stopped.contains("delivered 500/s of 800/s"));
    }

    #[tokio::test]
    async fn stops_when_p99_passes_the_bound() {
        let spec = SweepSpec {
            start_rate: 100.0,
            factor: 1.5,
            max_steps: 10,
            p99_bound: Duration::from_millis(10),
            follow: 0.9,
        };
        let result = sweep("fake", &spec, false, |rate| async move {
            Ok(vec![point(rate, rate, rate / 20.0)])
        })
        .await
        .expect("sweeps");
        // p99 = rate / 20 ms: 5, 7.5, 11.25 → stops at the third step.
        assert_eq!(result.steps.len(), 3);
        assert!(result.stopped.contains("p99"));
    }
}
