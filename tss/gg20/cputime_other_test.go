//go:build !unix

package gg20

import "time"

// cpuTime is not measured on this system.
func cpuTime() time.Duration { return 0 }
