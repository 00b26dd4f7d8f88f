//! What the metrics add to each request, each delivery attempt and each commit, as a
//! baseline-relative figure: `cargo bench -p hookgate-server --bench metrics`. The durable
//! ingest path costs about 60 µs of server CPU per event (`hookgate-bench metrics`), so a
//! few hundred nanoseconds here are well under a percent of it.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use hookgate_server::metrics::{IngestOutcome, Metrics};

fn metrics(c: &mut Criterion) {
    let sources: Vec<String> = (0..8).map(|i| format!("source-{i}")).collect();
    let destinations: Vec<String> = (0..4).map(|i| format!("destination-{i}")).collect();
    let on = Metrics::new(&sources, &destinations, true);
    let off = Metrics::new(&sources, &destinations, false);
    let took = Duration::from_micros(1800);
    let (source_on, source_off) = (on.source("source-5"), off.source("source-5"));
    let mut group = c.benchmark_group("per request");
    group.bench_function("metrics off (baseline)", |b| {
        b.iter(|| source_off.request(black_box(IngestOutcome::Accepted), took))
    });
    group.bench_function("accepted", |b| {
        b.iter(|| source_on.request(black_box(IngestOutcome::Accepted), took))
    });
    group.bench_function("refused (a late outcome in the list)", |b| {
        let outcome = IngestOutcome::Refused(hookgate_verify::ErrorKind::MissingField);
        b.iter(|| source_on.request(black_box(outcome), took))
    });
    group.finish();
    let destination = on.destination("destination-2");
    c.bench_function("per attempt: delivered", |b| {
        b.iter(|| {
            destination.dispatched(true);
            destination.attempt(
                hookgate_store::DeliveryStatus::Delivered,
                took,
                black_box(1_763_800_000_000),
                None,
            )
        })
    });
    let observer = on.commit_observer().unwrap();
    c.bench_function("per commit", |b| {
        b.iter(|| observer.committed(black_box(64), took, true))
    });
}

criterion_group!(benches, metrics);
criterion_main!(benches);
