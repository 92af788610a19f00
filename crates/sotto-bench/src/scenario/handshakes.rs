//! `handshakes`: OTR handshakes per second and their latency (the offer leaves the first side →
//! both sides established) against the real server, through the SDK's `OtrEndpoint` exactly as
//! a client does it: offer, invitation, accept with a fresh one-time key, 3DH session, binding
//! and key confirmation. Each pair then ends the session (End OTR) and starts again on its next
//! tick; the pairs' ticks are spread evenly so the offered rate is steady.

use std::time::{Duration, Instant};

use super::{ScenarioError, SottoSource};
use crate::load::new_histogram;
use crate::process;
use crate::provision::{self, RAISED_LIMITS};
use crate::report::{HandshakesReport, Machine, Percentiles, ProcessCost};
use crate::spawn::SottoProcess;

/// What to run.
#[derive(Debug, Clone)]
pub struct HandshakesSpec {
    /// Pairs handshaking concurrently.
    pub pairs: usize,
    /// Handshakes per second offered, all pairs together.
    pub rate: f64,
    /// Seconds of handshaking.
    pub duration: Duration,
    /// The Sotto server.
    pub sotto: SottoSource,
    /// Progress lines on stderr.
    pub progress: bool,
}

/// How long one handshake (or one end) may take before it counts as failed.
const STEP_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs the scenario.
pub async fn run(spec: &HandshakesSpec) -> Result<HandshakesReport, ScenarioError> {
    let mut machine = Machine::now();
    let (spawned, url, setup_token, pid) = match &spec.sotto {
        SottoSource::Spawn(bin) => {
            let server = SottoProcess::spawn(bin)?;
            let (url, token, pid) = (server.url.clone(), server.setup_token.clone(), server.pid());
            (Some(server), url, token, pid)
        }
        SottoSource::Running {
            url,
            setup_token,
            pid,
        } => (None, url.clone(), setup_token.clone(), *pid),
    };
    let measured_apart = spawned.is_some();
    let outcome = async {
        let admin = provision::admin(&url, &setup_token).await?;
        let pairs = provision::otr_pairs(&admin, "hs", spec.pairs).await?;
        if spec.progress {
            eprintln!("handshakes: {} pairs ready at {url}", spec.pairs);
        }
        let cpu_before = process::cpu_time(pid)?;
        let start = Instant::now();
        let stop_at = start + spec.duration;
        // Each pair offers every `period`; pair i starts i/pairs of a period late.
        let period = Duration::from_secs_f64(spec.pairs as f64 / spec.rate.max(0.001));
        let mut tasks = tokio::task::JoinSet::new();
        for (index, mut pair) in pairs.into_iter().enumerate() {
            let offset = period.mul_f64(index as f64 / spec.pairs.max(1) as f64);
            tasks.spawn(async move {
                let mut latencies = Vec::new();
                let mut failures = Vec::new();
                let mut started = 0u64;
                let first = tokio::time::Instant::from_std(start + offset);
                let mut ticks = tokio::time::interval_at(first, period);
                ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    ticks.tick().await;
                    if Instant::now() >= stop_at {
                        break;
                    }
                    started += 1;
                    match provision::establish(&mut pair, STEP_TIMEOUT).await {
                        Ok(latency) => latencies.push(latency),
                        Err(error) => {
                            failures.push(error.to_string());
                            // A pair that cannot hand-shake would only fail again.
                            break;
                        }
                    }
                    if let Err(error) = provision::end(&mut pair, STEP_TIMEOUT).await {
                        failures.push(error.to_string());
                        break;
                    }
                }
                (started, latencies, failures)
            });
        }
        let mut histogram = new_histogram();
        let mut started = 0;
        let mut failures = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok((count, latencies, failed)) => {
                    started += count;
                    for latency in latencies {
                        let nanos = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
                        let _ = histogram.record(nanos.max(1));
                    }
                    failures.extend(failed);
                }
                Err(error) => failures.push(format!("task failed: {error}")),
            }
        }
        let elapsed = start.elapsed();
        let cpu = process::cpu_time(pid)?.saturating_sub(cpu_before);
        let peak_rss_kib = process::peak_rss_kib(pid)?;
        Ok::<_, ScenarioError>((started, histogram, failures, elapsed, cpu, peak_rss_kib))
    }
    .await;
    if let Some(server) = spawned {
        server.stop();
    }
    let (started, histogram, failures, elapsed, cpu, peak_rss_kib) = outcome?;
    machine.finish();
    Ok(HandshakesReport {
        scenario: "handshakes",
        machine,
        pairs: spec.pairs,
        offered_per_sec: spec.rate,
        duration_secs: spec.duration.as_secs_f64(),
        settings: RAISED_LIMITS
            .iter()
            .map(|(k, v)| ((*k).to_owned(), *v))
            .collect(),
        started,
        established: histogram.len(),
        failures,
        established_per_sec: histogram.len() as f64 / elapsed.as_secs_f64().max(1e-9),
        latency: Percentiles::from_nanos(&histogram),
        cost: ProcessCost {
            pid,
            measured_apart,
            cpu_secs: cpu.as_secs_f64(),
            peak_rss_kib,
        },
    })
}
