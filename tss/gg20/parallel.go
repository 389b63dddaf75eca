package gg20

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
)

// runAll runs the tasks concurrently, at most GOMAXPROCS at a time, waits for
// all of them and returns their errors by position. A panicking task yields
// an ErrInternal error instead of crashing the process. A single task runs
// on the calling goroutine.
func runAll(tasks []func() error) []error {
	errs := make([]error, len(tasks))
	run := func(i int) {
		defer func() {
			if r := recover(); r != nil {
				errs[i] = fmt.Errorf("%w: %v", ErrInternal, r)
			}
		}()
		errs[i] = tasks[i]()
	}
	if len(tasks) == 1 {
		run(0)
		return errs
	}
	sem := make(chan struct{}, max(1, runtime.GOMAXPROCS(0)))
	var wg sync.WaitGroup
	for i := range tasks {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer func() { <-sem; wg.Done() }()
			run(i)
		}(i)
	}
	wg.Wait()
	return errs
}

// firstError returns the first non-nil error.
func firstError(errs []error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// blame turns the per-peer task errors of a round into one error: an
// ErrInternal failure (a bug or a broken random source) is returned as is,
// any other failure names its peer in a *CulpritError. who[i] is the signer
// index task i checked.
func blame(round int, who []int, errs []error) error {
	f := newFaults(round)
	for i, err := range errs {
		if err == nil {
			continue
		}
		if errors.Is(err, ErrInternal) {
			return err
		}
		f.add(who[i], err)
	}
	return f.err()
}
