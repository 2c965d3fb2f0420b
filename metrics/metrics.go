// Package metrics exports what a [dockerrun.Runner] does as Prometheus
// metrics, into a registry of the caller's choosing: it has no global state.
//
// A [*Metrics] is both the Runner's [dockerrun.Observer] (for counts and
// durations) and a [prometheus.Collector] (which reads [dockerrun.Stats] at
// each scrape for the gauges):
//
//	m := metrics.New()
//	r, err := dockerrun.New(dockerrun.WithObserver(m))
//	...
//	m.Watch(r)
//	reg := prometheus.NewRegistry()
//	reg.MustRegister(m)
//
// docs/operations.md says what each metric means.
//
// Label values stay bounded whatever clients send: an image is named in a
// label only once a container of it has been created (so it exists on the
// daemon) or when it has a warm pool, and at most [MaxImages] images are
// named; runs of any other image count under image="other".
package metrics

import (
	"strconv"
	"sync"

	"github.com/dockerrun/dockerrun"
	"github.com/prometheus/client_golang/prometheus"
)

// MaxImages is how many different images the image labels name at most;
// runs of further images count under [OtherImage].
const MaxImages = 64

// OtherImage is the image label of runs whose image is not named: one that
// may not exist, or one past [MaxImages].
const OtherImage = "other"

// CodeOK is the code label of a run that answered without an error or a
// limit.
const CodeOK = "ok"

// Source is what [Metrics.Watch] reads at each scrape: a
// [*dockerrun.Runner].
type Source interface {
	Stats() dockerrun.Stats
}

// Metrics holds a Runner's metrics. Create it with [New]; it is safe for
// concurrent use.
type Metrics struct {
	runs         *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	queueWait    prometheus.Histogram
	misses       *prometheus.CounterVec
	reaped       prometheus.Counter
	dockerErrors *prometheus.CounterVec

	inFlight  *prometheus.Desc
	queueLen  *prometheus.Desc
	warmReady *prometheus.Desc
	buildInfo *prometheus.Desc
	version   string

	mu     sync.Mutex
	source Source
	images map[string]bool // images named in labels
}

// New returns the metrics, with every counter at zero.
func New() *Metrics {
	m := &Metrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dockerrun_runs_total",
			Help: `Runs that ended, by image and code: "ok", or the stable error code (agent-reported limits included).`,
		}, []string{"image", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "dockerrun_run_duration_seconds",
			Help:    "Time from a run having its place (a warm container, or a place for a cold one) to its answer, for runs that had a container.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"image", "warm"}),
		queueWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "dockerrun_queue_wait_seconds",
			Help:    "Time runs without a warm container waited for a place, whether they got one or not.",
			Buckets: []float64{.001, .005, .01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}),
		misses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dockerrun_warm_pool_misses_total",
			Help: "Runs of an image with a warm pool that found no warm container ready and ran cold.",
		}, []string{"image"}),
		reaped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dockerrun_containers_reaped_total",
			Help: "Leftover containers (of a dead instance, or whose removal failed) removed by the reaper.",
		}),
		dockerErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dockerrun_docker_errors_total",
			Help: "Failed calls to the Docker daemon, by call.",
		}, []string{"op"}),
		inFlight:  prometheus.NewDesc("dockerrun_runs_in_flight", "Runs in progress that are not waiting for a place.", nil, nil),
		queueLen:  prometheus.NewDesc("dockerrun_queue_length", "Runs waiting for a place.", nil, nil),
		warmReady: prometheus.NewDesc("dockerrun_warm_pool_ready", "Warm containers started and idle, by image.", []string{"image"}, nil),
		buildInfo: prometheus.NewDesc("dockerrun_build_info", "Always 1; the version label is the running build's.", []string{"version"}, nil),
		version:   dockerrun.Version(),
		images:    make(map[string]bool),
	}
	for _, op := range dockerrun.DockerOps() {
		m.dockerErrors.WithLabelValues(op)
	}
	return m
}

// Watch makes the gauges read s (a Runner) at each scrape. Until Watch is
// called the gauges are not exported. The images of s's warm pool are
// named in labels from then on.
func (m *Metrics) Watch(s Source) {
	pool := s.Stats().WarmReady
	m.mu.Lock()
	m.source = s
	for image := range pool {
		m.images[image] = true // configured, so bounded: not capped
	}
	m.mu.Unlock()
	for image := range pool {
		m.misses.WithLabelValues(image)
	}
}

// label returns the image label of image: image itself if it is named
// already, or if exists is true and fewer than [MaxImages] are named; else
// [OtherImage].
func (m *Metrics) label(image string, exists bool) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.images[image] {
		return image
	}
	if exists && len(m.images) < MaxImages {
		m.images[image] = true
		return image
	}
	return OtherImage
}

// RunDone implements [dockerrun.Observer].
func (m *Metrics) RunDone(info dockerrun.RunInfo) {
	image := m.label(info.Image, info.Container)
	code := string(info.Code)
	if code == "" {
		code = CodeOK
	}
	m.runs.WithLabelValues(image, code).Inc()
	if info.Container {
		m.duration.WithLabelValues(image, strconv.FormatBool(info.Warm)).Observe(info.Duration.Seconds())
	}
	if info.Queued {
		m.queueWait.Observe(info.QueueWait.Seconds())
	}
	if info.WarmMiss {
		// An image with a warm pool is named once Watch has run.
		m.misses.WithLabelValues(image).Inc()
	}
}

// ContainersReaped implements [dockerrun.Observer].
func (m *Metrics) ContainersReaped(n int) { m.reaped.Add(float64(n)) }

// DockerError implements [dockerrun.Observer].
func (m *Metrics) DockerError(op string) { m.dockerErrors.WithLabelValues(op).Inc() }

// recorded returns the metrics that the Observer methods record, which
// Describe and Collect pass on; the others are read at each Collect.
func (m *Metrics) recorded() []prometheus.Collector {
	return []prometheus.Collector{m.runs, m.duration, m.queueWait, m.misses, m.reaped, m.dockerErrors}
}

// Describe implements [prometheus.Collector].
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.recorded() {
		c.Describe(ch)
	}
	ch <- m.inFlight
	ch <- m.queueLen
	ch <- m.warmReady
	ch <- m.buildInfo
}

// Collect implements [prometheus.Collector].
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m.recorded() {
		c.Collect(ch)
	}
	ch <- prometheus.MustNewConstMetric(m.buildInfo, prometheus.GaugeValue, 1, m.version)
	m.mu.Lock()
	s := m.source
	m.mu.Unlock()
	if s == nil {
		return
	}
	st := s.Stats()
	ch <- prometheus.MustNewConstMetric(m.inFlight, prometheus.GaugeValue, float64(st.Running))
	ch <- prometheus.MustNewConstMetric(m.queueLen, prometheus.GaugeValue, float64(st.Waiting))
	for image, n := range st.WarmReady {
		ch <- prometheus.MustNewConstMetric(m.warmReady, prometheus.GaugeValue, float64(n), image)
	}
}

var _ dockerrun.Observer = (*Metrics)(nil)
