package testkit

import "github.com/prometheus/client_golang/prometheus"

// MetricSum sums the samples of metric family name whose labels include
// want (counters and gauges by value, histograms by sample count), for
// tests that assert on what godwit exports.
func MetricSum(g prometheus.Gatherer, name string, want map[string]string) float64 {
	mfs, _ := g.Gather()
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for k, v := range want {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == k && lp.GetValue() == v {
						found = true
					}
				}
				if !found {
					continue next
				}
			}
			switch {
			case m.Counter != nil:
				sum += m.Counter.GetValue()
			case m.Gauge != nil:
				sum += m.Gauge.GetValue()
			case m.Histogram != nil:
				sum += float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return sum
}

// MetricCount is how many series of metric family name have labels that
// include want, for tests that assert a series is absent (unknown) rather
// than 0.
func MetricCount(g prometheus.Gatherer, name string, want map[string]string) int {
	mfs, _ := g.Gather()
	n := 0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for k, v := range want {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == k && lp.GetValue() == v {
						found = true
					}
				}
				if !found {
					continue next
				}
			}
			n++
		}
	}
	return n
}
