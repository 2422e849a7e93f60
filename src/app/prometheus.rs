//! A small Prometheus recorder for the `metrics` facade, rendered in the text exposition format
//! 0.0.4. It replaces `metrics-exporter-prometheus`, which with `metrics-util` brought 26 crates
//! into the tree, among them a second copy of `rand`, `rand_core` and `getrandom`, for features
//! we do not use (summaries, push gateways, its own HTTP listener).
//!
//! Counters are atomic integers, gauges are `f64` bits in an atomic, and histograms have fixed
//! buckets (per metric, configured when the recorder is built) with one atomic count per bucket
//! and an atomic sum, so recording never takes a lock and memory stays flat without any upkeep
//! task. The registry behind a `RwLock` is touched only when a handle is registered (the
//! libraries call `counter!` and friends at each event, so registration takes a read lock on
//! the common path) and when `/metrics` is rendered; it is never held across an `.await`.
//!
//! A series is identified by its sanitized name and its set of labels, whatever the order the
//! labels were given in; it is rendered with the labels in the order of its first registration,
//! so `counter!(name, "workflow" => w, "status" => s)` renders `{workflow="…",status="…"}`.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use anyhow::ensure;
use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
    SharedString, Unit,
};

/// The buckets of a histogram that was given none: the Prometheus client libraries' defaults,
/// meant for request latencies in seconds.
pub const DEFAULT_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Builds a [`PrometheusRecorder`] with the buckets of each histogram.
#[derive(Debug, Default)]
pub struct PrometheusBuilder {
    buckets: HashMap<String, Arc<[f64]>>,
}

impl PrometheusBuilder {
    /// Gives the histogram `name` these bucket upper bounds (the `+Inf` bucket is implied).
    /// They must be finite and strictly increasing, and there must be at least one.
    pub fn buckets(mut self, name: &str, bounds: &[f64]) -> anyhow::Result<Self> {
        ensure!(!bounds.is_empty(), "the histogram {name} has no buckets");
        ensure!(
            bounds.iter().all(|bound| bound.is_finite()),
            "the histogram {name} has a bucket bound that is not finite"
        );
        ensure!(
            bounds.windows(2).all(|pair| pair[0] < pair[1]),
            "the buckets of the histogram {name} are not strictly increasing"
        );
        self.buckets.insert(sanitize_name(name), bounds.into());
        Ok(self)
    }

    /// The recorder, with no metric registered yet.
    pub fn build(self) -> PrometheusRecorder {
        PrometheusRecorder {
            inner: Arc::new(Inner {
                buckets: self.buckets,
                default_buckets: DEFAULT_BUCKETS.into(),
                state: RwLock::new(State::default()),
            }),
        }
    }
}

/// The recorder and its renderer: clones share the same metrics, so one clone can be installed as
/// the global recorder while another renders `/metrics`.
#[derive(Clone)]
pub struct PrometheusRecorder {
    inner: Arc<Inner>,
}

struct Inner {
    /// Bucket bounds by sanitized histogram name.
    buckets: HashMap<String, Arc<[f64]>>,
    default_buckets: Arc<[f64]>,
    state: RwLock<State>,
}

#[derive(Default)]
struct State {
    /// Handles by the facade's key (whose equality ignores the order of labels): the common path
    /// of registration. `None` records a refused registration (the name belongs to a metric of
    /// another type), so that it is refused silently after the first warning.
    counters: HashMap<Key, Option<Arc<CounterCell>>>,
    gauges: HashMap<Key, Option<Arc<GaugeCell>>>,
    histograms: HashMap<Key, Option<Arc<HistogramCell>>>,
    /// Every series, by sanitized name and then by its sorted labels: what is rendered.
    families: BTreeMap<String, Family>,
    /// `describe_*` texts by sanitized name; a metric may be described before it is registered.
    descriptions: HashMap<String, Description>,
}

struct Family {
    kind: Kind,
    series: BTreeMap<Labels, Series>,
}

/// Sanitized label names and their values.
type Labels = Vec<(String, String)>;

struct Series {
    /// The labels in the order of the first registration.
    labels: Labels,
    metric: Metric,
}

enum Metric {
    Counter(Arc<CounterCell>),
    Gauge(Arc<GaugeCell>),
    Histogram(Arc<HistogramCell>),
}

struct Description {
    help: String,
    unit: Option<Unit>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

impl PrometheusRecorder {
    /// A builder, to set the buckets of histograms.
    pub fn builder() -> PrometheusBuilder {
        PrometheusBuilder::default()
    }

    /// Every registered series in the text exposition format 0.0.4: families sorted by name,
    /// each with its `# HELP` (when described) and `# TYPE` lines, and its series sorted by their
    /// labels.
    pub fn render(&self) -> String {
        let state = self.read();
        let mut out = String::new();
        for (name, family) in &state.families {
            if let Some(description) = state.descriptions.get(name) {
                out.push_str("# HELP ");
                out.push_str(name);
                out.push(' ');
                escape_help(&description.text(name), &mut out);
                out.push('\n');
            }
            out.push_str("# TYPE ");
            out.push_str(name);
            out.push(' ');
            out.push_str(family.kind.as_str());
            out.push('\n');
            for series in family.series.values() {
                match &series.metric {
                    Metric::Counter(cell) => {
                        let value = cell.0.load(Ordering::Relaxed).to_string();
                        sample(&mut out, name, "", &series.labels, None, &value);
                    }
                    Metric::Gauge(cell) => {
                        let value = format_float(cell.get());
                        sample(&mut out, name, "", &series.labels, None, &value);
                    }
                    Metric::Histogram(cell) => render_histogram(&mut out, name, series, cell),
                }
            }
        }
        out
    }

    fn read(&self) -> RwLockReadGuard<'_, State> {
        // A panic while holding the lock leaves no half-made entry that rendering could trip
        // over (entries are inserted whole), so a poisoned lock is still usable.
        self.inner
            .state
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.inner
            .state
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn describe(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.write().descriptions.insert(
            sanitize_name(key.as_str()),
            Description {
                help: description.into_owned(),
                unit,
            },
        );
    }

    /// The handle of `key`'s series, created on first use; `None` when the name already belongs
    /// to a metric of another type (the exposition could not hold both).
    fn register<C: Cell>(&self, key: &Key) -> Option<Arc<C>> {
        if let Some(found) = C::cache(&self.read()).get(key) {
            return found.clone();
        }
        let mut state = self.write();
        // Another thread may have registered it between the two locks.
        if let Some(found) = C::cache(&state).get(key) {
            return found.clone();
        }
        let name = sanitize_name(key.name());
        let labels = canonical_labels(key, C::KIND);
        let mut sorted = labels.clone();
        sorted.sort();
        let family = state
            .families
            .entry(name.clone())
            .or_insert_with(|| Family {
                kind: C::KIND,
                series: BTreeMap::new(),
            });
        let cell = if family.kind == C::KIND {
            let series = family.series.entry(sorted).or_insert_with(|| Series {
                labels,
                metric: C::wrap(Arc::new(C::create(&self.inner, &name))),
            });
            C::unwrap(&series.metric)
        } else {
            tracing::warn!(
                metric = %name,
                registered = family.kind.as_str(),
                requested = C::KIND.as_str(),
                "metrics: the name is already used by a metric of another type; not recording this one"
            );
            None
        };
        C::cache_mut(&mut state).insert(key.clone(), cell.clone());
        cell
    }
}

impl Recorder for PrometheusRecorder {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.describe(key, unit, description);
    }

    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.describe(key, unit, description);
    }

    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.describe(key, unit, description);
    }

    fn register_counter(&self, key: &Key, _metadata: &Metadata<'_>) -> Counter {
        self.register::<CounterCell>(key)
            .map_or_else(Counter::noop, Counter::from_arc)
    }

    fn register_gauge(&self, key: &Key, _metadata: &Metadata<'_>) -> Gauge {
        self.register::<GaugeCell>(key)
            .map_or_else(Gauge::noop, Gauge::from_arc)
    }

    fn register_histogram(&self, key: &Key, _metadata: &Metadata<'_>) -> Histogram {
        self.register::<HistogramCell>(key)
            .map_or_else(Histogram::noop, Histogram::from_arc)
    }
}

impl Description {
    /// The help text, with the unit appended when the metric's name does not already say it
    /// (Prometheus names carry their unit as a suffix, as in `_seconds` or `_seconds_total`).
    fn text(&self, name: &str) -> String {
        match self.unit {
            Some(unit) => {
                let base = name.strip_suffix("_total").unwrap_or(name);
                let unit = unit.as_str();
                if base
                    .strip_suffix(unit)
                    .is_some_and(|rest| rest.ends_with('_'))
                {
                    self.help.clone()
                } else {
                    format!("{} (unit: {unit})", self.help)
                }
            }
            None => self.help.clone(),
        }
    }
}

/// What the registry needs of each kind of series.
trait Cell: Sized {
    const KIND: Kind;
    fn create(inner: &Inner, name: &str) -> Self;
    fn cache(state: &State) -> &HashMap<Key, Option<Arc<Self>>>;
    fn cache_mut(state: &mut State) -> &mut HashMap<Key, Option<Arc<Self>>>;
    fn wrap(cell: Arc<Self>) -> Metric;
    fn unwrap(metric: &Metric) -> Option<Arc<Self>>;
}

/// A counter: a monotonic integer.
struct CounterCell(AtomicU64);

impl CounterFn for CounterCell {
    fn increment(&self, value: u64) {
        self.0.fetch_add(value, Ordering::Relaxed);
    }

    fn absolute(&self, value: u64) {
        // Callers mirroring an external counter may race with an older value: never go back.
        self.0.fetch_max(value, Ordering::Relaxed);
    }
}

impl Cell for CounterCell {
    const KIND: Kind = Kind::Counter;

    fn create(_inner: &Inner, _name: &str) -> Self {
        CounterCell(AtomicU64::new(0))
    }

    fn cache(state: &State) -> &HashMap<Key, Option<Arc<Self>>> {
        &state.counters
    }

    fn cache_mut(state: &mut State) -> &mut HashMap<Key, Option<Arc<Self>>> {
        &mut state.counters
    }

    fn wrap(cell: Arc<Self>) -> Metric {
        Metric::Counter(cell)
    }

    fn unwrap(metric: &Metric) -> Option<Arc<Self>> {
        match metric {
            Metric::Counter(cell) => Some(cell.clone()),
            _ => None,
        }
    }
}

/// A gauge: an `f64` kept as its bits.
struct GaugeCell(AtomicU64);

impl GaugeCell {
    fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }
}

impl GaugeFn for GaugeCell {
    fn increment(&self, value: f64) {
        add_float(&self.0, value);
    }

    fn decrement(&self, value: f64) {
        add_float(&self.0, -value);
    }

    fn set(&self, value: f64) {
        self.0.store(value.to_bits(), Ordering::Relaxed);
    }
}

impl Cell for GaugeCell {
    const KIND: Kind = Kind::Gauge;

    fn create(_inner: &Inner, _name: &str) -> Self {
        GaugeCell(AtomicU64::new(0.0_f64.to_bits()))
    }

    fn cache(state: &State) -> &HashMap<Key, Option<Arc<Self>>> {
        &state.gauges
    }

    fn cache_mut(state: &mut State) -> &mut HashMap<Key, Option<Arc<Self>>> {
        &mut state.gauges
    }

    fn wrap(cell: Arc<Self>) -> Metric {
        Metric::Gauge(cell)
    }

    fn unwrap(metric: &Metric) -> Option<Arc<Self>> {
        match metric {
            Metric::Gauge(cell) => Some(cell.clone()),
            _ => None,
        }
    }
}

/// A histogram with fixed buckets: one count per bucket (not cumulative: the values in
/// `(previous bound, bound]`), one more for the values above the last bound (and NaN), and the
/// sum of every value.
struct HistogramCell {
    bounds: Arc<[f64]>,
    /// `bounds.len() + 1` counts; the last is the `+Inf` bucket's own.
    counts: Box<[AtomicU64]>,
    sum: AtomicU64,
}

impl HistogramCell {
    fn new(bounds: Arc<[f64]>) -> Self {
        let counts = (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect();
        HistogramCell {
            bounds,
            counts,
            sum: AtomicU64::new(0.0_f64.to_bits()),
        }
    }

    /// The index of the bucket `value` falls in: the first bound it does not exceed (buckets
    /// are `le`, less than or equal), or the last count.
    fn bucket(&self, value: f64) -> usize {
        if value.is_nan() {
            // NaN is not `<=` any bound: only the `+Inf` bucket counts it.
            self.bounds.len()
        } else {
            self.bounds.partition_point(|bound| *bound < value)
        }
    }
}

impl HistogramFn for HistogramCell {
    fn record(&self, value: f64) {
        self.record_many(value, 1);
    }

    fn record_many(&self, value: f64, count: usize) {
        let times = u64::try_from(count).unwrap_or(u64::MAX);
        self.counts[self.bucket(value)].fetch_add(times, Ordering::Relaxed);
        add_float(&self.sum, value * count as f64);
    }
}

impl Cell for HistogramCell {
    const KIND: Kind = Kind::Histogram;

    fn create(inner: &Inner, name: &str) -> Self {
        let bounds = inner
            .buckets
            .get(name)
            .unwrap_or(&inner.default_buckets)
            .clone();
        HistogramCell::new(bounds)
    }

    fn cache(state: &State) -> &HashMap<Key, Option<Arc<Self>>> {
        &state.histograms
    }

    fn cache_mut(state: &mut State) -> &mut HashMap<Key, Option<Arc<Self>>> {
        &mut state.histograms
    }

    fn wrap(cell: Arc<Self>) -> Metric {
        Metric::Histogram(cell)
    }

    fn unwrap(metric: &Metric) -> Option<Arc<Self>> {
        match metric {
            Metric::Histogram(cell) => Some(cell.clone()),
            _ => None,
        }
    }
}

/// Adds `delta` to the `f64` whose bits `cell` holds.
fn add_float(cell: &AtomicU64, delta: f64) {
    let mut current = cell.load(Ordering::Relaxed);
    loop {
        let next = (f64::from_bits(current) + delta).to_bits();
        match cell.compare_exchange_weak(current, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return,
            Err(actual) => current = actual,
        }
    }
}

/// Writes a histogram's cumulative `_bucket` lines (ending with `le="+Inf"`), `_sum` and
/// `_count`. The count is the `+Inf` bucket's, read from the same loads, so the two always agree
/// even while values are being recorded.
fn render_histogram(out: &mut String, name: &str, series: &Series, cell: &HistogramCell) {
    let mut cumulative = 0_u64;
    for (bound, count) in cell.bounds.iter().zip(cell.counts.iter()) {
        cumulative = cumulative.saturating_add(count.load(Ordering::Relaxed));
        let le = format_float(*bound);
        let value = cumulative.to_string();
        sample(out, name, "_bucket", &series.labels, Some(&le), &value);
    }
    if let Some(overflow) = cell.counts.last() {
        cumulative = cumulative.saturating_add(overflow.load(Ordering::Relaxed));
    }
    let total = cumulative.to_string();
    sample(out, name, "_bucket", &series.labels, Some("+Inf"), &total);
    let sum = format_float(f64::from_bits(cell.sum.load(Ordering::Relaxed)));
    sample(out, name, "_sum", &series.labels, None, &sum);
    sample(out, name, "_count", &series.labels, None, &total);
}

/// Writes `name{label="value",…,le="…"} value`; the braces only when there is a label.
fn sample(
    out: &mut String,
    name: &str,
    suffix: &str,
    labels: &[(String, String)],
    le: Option<&str>,
    value: &str,
) {
    out.push_str(name);
    out.push_str(suffix);
    if !labels.is_empty() || le.is_some() {
        out.push('{');
        let le = le.map(|le| ("le", le));
        let pairs = labels
            .iter()
            .map(|(key, value)| (key.as_str(), value.as_str()))
            .chain(le);
        for (at, (key, value)) in pairs.enumerate() {
            if at > 0 {
                out.push(',');
            }
            out.push_str(key);
            out.push_str("=\"");
            escape_label_value(value, out);
            out.push('"');
        }
        out.push('}');
    }
    out.push(' ');
    out.push_str(value);
    out.push('\n');
}

/// A float as the text format writes it: `+Inf`, `-Inf`, `NaN`, or the shortest decimal that
/// reads back as the same number (`60`, `0.001`).
fn format_float(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_owned()
    } else if value == f64::INFINITY {
        "+Inf".to_owned()
    } else if value == f64::NEG_INFINITY {
        "-Inf".to_owned()
    } else {
        value.to_string()
    }
}

/// Label values escape the backslash, the double quote and the line feed.
fn escape_label_value(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Help texts escape the backslash and the line feed (a double quote stays as it is).
fn escape_help(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// A metric name as the format allows it, `[a-zA-Z_:][a-zA-Z0-9_:]*`: any other character
/// becomes `_`, and a leading digit (or an empty name) gets a `_` before it.
fn sanitize_name(name: &str) -> String {
    sanitize(name, true)
}

/// A label name as the format allows it, `[a-zA-Z_][a-zA-Z0-9_]*` (no colon).
fn sanitize_label_name(name: &str) -> String {
    sanitize(name, false)
}

fn sanitize(name: &str, colons: bool) -> String {
    let mut out = String::with_capacity(name.len() + 1);
    if name.chars().next().is_none_or(|c| c.is_ascii_digit()) {
        out.push('_');
    }
    for c in name.chars() {
        if c.is_ascii_alphanumeric() || c == '_' || (colons && c == ':') {
            out.push(c);
        } else {
            out.push('_');
        }
    }
    out
}

/// The key's labels with sanitized names, in the given order, each name once (the first value
/// wins: the format does not allow a name twice). A histogram's own `le` label is renamed
/// `exported_le`, as Prometheus itself does with clashing labels, since `le` names its buckets.
fn canonical_labels(key: &Key, kind: Kind) -> Labels {
    let mut labels: Labels = Vec::new();
    for label in key.labels() {
        let mut name = sanitize_label_name(label.key());
        if kind == Kind::Histogram && name == "le" {
            name = "exported_le".to_owned();
        }
        if labels.iter().all(|(existing, _)| *existing != name) {
            labels.push((name, label.value().to_owned()));
        }
    }
    labels
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorder() -> PrometheusRecorder {
        PrometheusRecorder::builder()
            .buckets("job_seconds", &[0.25, 0.5, 1.0])
            .unwrap()
            .build()
    }

    #[test]
    fn counters_and_gauges_render_with_help_and_type_sorted_by_name_and_labels() {
        let recorder = recorder();
        metrics::with_local_recorder(&recorder, || {
            metrics::describe_counter!("jobs_total", "Jobs done, by queue.");
            metrics::describe_gauge!("depth", "Items waiting.");
            metrics::counter!("jobs_total", "queue" => "b").increment(2);
            metrics::counter!("jobs_total", "queue" => "a").increment(1);
            metrics::counter!("jobs_total", "queue" => "a").increment(4);
            metrics::counter!("restarts_total").absolute(7);
            // An older absolute value never moves a counter back.
            metrics::counter!("restarts_total").absolute(3);
            let depth = metrics::gauge!("depth");
            depth.set(10.0);
            depth.increment(2.5);
            depth.decrement(0.5);
            metrics::gauge!("ratio").set(f64::NEG_INFINITY);
        });
        assert_eq!(
            recorder.render(),
            "# HELP depth Items waiting.\n\
             # TYPE depth gauge\n\
             depth 12\n\
             # HELP jobs_total Jobs done, by queue.\n\
             # TYPE jobs_total counter\n\
             jobs_total{queue=\"a\"} 5\n\
             jobs_total{queue=\"b\"} 2\n\
             # TYPE ratio gauge\n\
             ratio -Inf\n\
             # TYPE restarts_total counter\n\
             restarts_total 7\n"
        );
    }

    #[test]
    fn histogram_buckets_are_cumulative_inclusive_and_end_with_inf_sum_and_count() {
        let recorder = recorder();
        metrics::with_local_recorder(&recorder, || {
            metrics::describe_histogram!("job_seconds", Unit::Seconds, "Job durations.");
            let histogram = metrics::histogram!("job_seconds", "queue" => "a");
            // A value on a bound counts in that bucket (`le` is less than or equal).
            // The values are binary fractions, so their sum is exact.
            for value in [0.125, 0.25, 0.375, 1.0, 4.0] {
                histogram.record(value);
            }
            histogram.record_many(0.5, 3);
            // NaN is counted only in `+Inf`, and poisons the sum as it should.
            metrics::histogram!("job_seconds", "queue" => "nan").record(f64::NAN);
        });
        assert_eq!(
            recorder.render(),
            "# HELP job_seconds Job durations.\n\
             # TYPE job_seconds histogram\n\
             job_seconds_bucket{queue=\"a\",le=\"0.25\"} 2\n\
             job_seconds_bucket{queue=\"a\",le=\"0.5\"} 6\n\
             job_seconds_bucket{queue=\"a\",le=\"1\"} 7\n\
             job_seconds_bucket{queue=\"a\",le=\"+Inf\"} 8\n\
             job_seconds_sum{queue=\"a\"} 7.25\n\
             job_seconds_count{queue=\"a\"} 8\n\
             job_seconds_bucket{queue=\"nan\",le=\"0.25\"} 0\n\
             job_seconds_bucket{queue=\"nan\",le=\"0.5\"} 0\n\
             job_seconds_bucket{queue=\"nan\",le=\"1\"} 0\n\
             job_seconds_bucket{queue=\"nan\",le=\"+Inf\"} 1\n\
             job_seconds_sum{queue=\"nan\"} NaN\n\
             job_seconds_count{queue=\"nan\"} 1\n"
        );
    }

    #[test]
    fn a_histogram_without_configured_buckets_uses_the_default_ones() {
        let recorder = recorder();
        metrics::with_local_recorder(&recorder, || {
            metrics::histogram!("other_seconds").record(0.003);
        });
        let text = recorder.render();
        let bounds: Vec<&str> = text
            .lines()
            .filter_map(|line| line.strip_prefix("other_seconds_bucket{le=\""))
            .filter_map(|rest| rest.split_once('"').map(|(le, _)| le))
            .collect();
        let expected: Vec<String> = DEFAULT_BUCKETS
            .iter()
            .map(|bound| bound.to_string())
            .chain(["+Inf".to_owned()])
            .collect();
        assert_eq!(bounds, expected);
        assert!(
            text.contains("other_seconds_bucket{le=\"0.005\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("other_seconds_count 1\n"), "{text}");
    }

    #[test]
    fn label_values_and_help_texts_are_escaped() {
        let recorder = recorder();
        metrics::with_local_recorder(&recorder, || {
            metrics::describe_counter!("odd_total", "A \"quoted\" back\\slash\nand a second line.");
            metrics::counter!("odd_total", "path" => "C:\\dir\\\"x\"\nnext").increment(1);
        });
        assert_eq!(
            recorder.render(),
            "# HELP odd_total A \"quoted\" back\\\\slash\\nand a second line.\n\
             # TYPE odd_total counter\n\
             odd_total{path=\"C:\\\\dir\\\\\\\"x\\\"\\nnext\"} 1\n"
        );
    }

    #[test]
    fn metric_and_label_names_are_sanitized() {
        let recorder = recorder();
        metrics::with_local_recorder(&recorder, || {
            metrics::counter!("9lives.total-count", "bad-label:x" => "v", "1st" => "w")
                .increment(1);
            metrics::gauge!("ns:ok_name").set(1.0);
        });
        assert_eq!(
            recorder.render(),
            "# TYPE _9lives_total_count counter\n\
             _9lives_total_count{bad_label_x=\"v\",_1st=\"w\"} 1\n\
             # TYPE ns:ok_name gauge\n\
             ns:ok_name 1\n"
        );
    }

    #[test]
    fn a_label_set_is_one_series_whatever_its_order_and_keeps_its_first_order() {
        let recorder = recorder();
        metrics::with_local_recorder(&recorder, || {
            metrics::counter!("runs_total", "workflow" => "w", "status" => "ok").increment(1);
            metrics::counter!("runs_total", "status" => "ok", "workflow" => "w").increment(1);
            // Two names that sanitize alike are one series too.
            metrics::counter!("runs-total", "workflow" => "w", "status" => "ok").increment(1);
            // A repeated label name keeps its first value.
            metrics::counter!("dup_total", "a" => "1", "a" => "2").increment(1);
            // A histogram's own `le` label cannot clash with its buckets.
            metrics::histogram!("job_seconds", "le" => "mine").record(2.0);
        });
        let text = recorder.render();
        assert!(
            text.contains("\nruns_total{workflow=\"w\",status=\"ok\"} 3\n"),
            "{text}"
        );
        assert!(text.contains("\ndup_total{a=\"1\"} 1\n"), "{text}");
        assert!(
            text.contains("\njob_seconds_bucket{exported_le=\"mine\",le=\"+Inf\"} 1\n"),
            "{text}"
        );
        assert_eq!(text.matches("runs_total{").count(), 1, "{text}");
    }

    #[test]
    fn a_name_taken_by_another_type_is_not_recorded_and_the_exposition_stays_valid() {
        let recorder = recorder();
        metrics::with_local_recorder(&recorder, || {
            metrics::counter!("things").increment(3);
            metrics::gauge!("things").set(100.0);
            metrics::gauge!("things").set(200.0);
            metrics::histogram!("things", "x" => "y").record(1.0);
        });
        assert_eq!(recorder.render(), "# TYPE things counter\nthings 3\n");
    }

    #[test]
    fn the_unit_is_added_to_the_help_text_only_when_the_name_does_not_carry_it() {
        let recorder = recorder();
        metrics::with_local_recorder(&recorder, || {
            metrics::describe_histogram!("wait_seconds", Unit::Seconds, "Waits.");
            metrics::describe_counter!("busy_seconds_total", Unit::Seconds, "Busy time.");
            metrics::describe_gauge!("payload", Unit::Bytes, "Last payload.");
            metrics::describe_gauge!("described_only", "Never registered.");
            metrics::histogram!("wait_seconds").record(1.0);
            metrics::counter!("busy_seconds_total").increment(1);
            metrics::gauge!("payload").set(512.0);
        });
        let text = recorder.render();
        assert!(text.contains("# HELP wait_seconds Waits.\n"), "{text}");
        assert!(
            text.contains("# HELP busy_seconds_total Busy time.\n"),
            "{text}"
        );
        assert!(
            text.contains("# HELP payload Last payload. (unit: bytes)\n"),
            "{text}"
        );
        // A description alone is no series.
        assert!(!text.contains("described_only"), "{text}");
    }

    #[test]
    fn concurrent_recording_loses_no_update() {
        let recorder = recorder();
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    metrics::with_local_recorder(&recorder, || {
                        for _ in 0..1000 {
                            metrics::counter!("hits_total").increment(1);
                            metrics::gauge!("level").increment(0.5);
                            metrics::histogram!("job_seconds").record(0.375);
                        }
                    });
                });
            }
        });
        let text = recorder.render();
        assert!(text.contains("\nhits_total 4000\n"), "{text}");
        assert!(text.contains("\nlevel 2000\n"), "{text}");
        assert!(
            text.contains("\njob_seconds_bucket{le=\"0.25\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains("\njob_seconds_bucket{le=\"0.5\"} 4000\n"),
            "{text}"
        );
        assert!(text.contains("\njob_seconds_sum 1500\n"), "{text}");
        assert!(text.contains("\njob_seconds_count 4000\n"), "{text}");
    }

    #[test]
    fn bucket_bounds_must_be_finite_strictly_increasing_and_not_empty() {
        for bad in [
            &[][..],
            &[0.1, 0.1][..],
            &[1.0, 0.5][..],
            &[0.1, f64::INFINITY][..],
            &[f64::NAN][..],
        ] {
            assert!(
                PrometheusRecorder::builder().buckets("x", bad).is_err(),
                "{bad:?}"
            );
        }
        assert!(
            PrometheusRecorder::builder()
                .buckets("x", &[-1.0, 0.0, 2.5])
                .is_ok()
        );
    }

    #[test]
    fn floats_are_written_as_the_format_reads_them() {
        assert_eq!(format_float(60.0), "60");
        assert_eq!(format_float(0.001), "0.001");
        assert_eq!(format_float(-2.5), "-2.5");
        assert_eq!(format_float(f64::INFINITY), "+Inf");
        assert_eq!(format_float(f64::NEG_INFINITY), "-Inf");
        assert_eq!(format_float(f64::NAN), "NaN");
        for value in [0.1 + 0.2, 1e-9, 1.5e300, f64::MIN_POSITIVE] {
            assert_eq!(format_float(value).parse::<f64>().unwrap(), value);
        }
    }
}
