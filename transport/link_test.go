package transport

import (
	"testing"
	"time"
)

func TestLink_BackoffIsBoundedExponential(t *testing.T) {
	n := &Network{cfg: Config{BackoffMin: 100 * time.Millisecond, BackoffMax: time.Second}}
	l := &link{n: n}
	want := []time.Duration{100, 200, 400, 800, 1000, 1000, 1000}
	for i, w := range want {
		l.failures = i + 1
		w *= time.Millisecond
		for range 50 {
			d := l.backoff()
			if d > w || d < w*3/4 {
				t.Fatalf("after %d failures: backoff %v, want within [%v, %v]", i+1, d, w*3/4, w)
			}
		}
	}
	l.failures = 1000 // no overflow
	if d := l.backoff(); d > time.Second || d <= 0 {
		t.Fatalf("after 1000 failures: %v", d)
	}
}
