package gg20

import (
	"fmt"
	"os"
	"syscall"
	"testing"
	"time"
)

func cpuNow() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func TestZZCPU(t *testing.T) {
	if os.Getenv("ZZCPU") == "" {
		t.Skip()
	}
	ks := keys(t, "2-of-3")
	digest := digestOf("x")
	presign(t, ks, []int{0, 1}, nil)
	minP, minG := time.Hour, time.Hour
	var sumP, sumG time.Duration
	for rep := 0; rep < 8; rep++ {
		c0 := cpuNow()
		presign(t, ks, []int{0, 1}, nil)
		c1 := cpuNow()
		gg18Sign(t, ks, []int{0, 1}, digest)
		c2 := cpuNow()
		minP, minG = min(minP, c1-c0), min(minG, c2-c1)
		sumP += c1 - c0
		sumG += c2 - c1
	}
	fmt.Printf("CPU presign min %v avg %v; GG18 min %v avg %v; ratio min %.2f avg %.2f\n", minP, sumP/8, minG, sumG/8, float64(minG)/float64(minP), float64(sumG)/float64(sumP))
}
