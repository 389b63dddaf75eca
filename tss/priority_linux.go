package tss

import (
	"fmt"
	"os/exec"
	"runtime"

	"golang.org/x/sys/unix"
)

// lowPriorityNice is the nice value a pre-parameter worker runs at, in
// addition to SCHED_IDLE (and instead of it where SCHED_IDLE is refused).
const lowPriorityNice = 19

// startLowPriority starts cmd under SCHED_IDLE with nice 19, so that the
// kernel gives its threads only CPU time that nothing else wants.
//
// On Linux both are attributes of a thread, not of a process, and a new
// process inherits them from the thread that forks it (sched(7),
// setpriority(2) BUGS). Lowering the worker after it started would miss
// the threads its Go runtime made already, so the fork happens on a thread
// of this process that was lowered first and that is never used again:
// the goroutine locks itself to the thread and ends without unlocking,
// which makes the runtime retire the thread (runtime.LockOSThread).
//
// The runtime retires every such thread except the process's main thread,
// which it parks for ever instead: lowered, that thread would stay in the
// process at idle priority. So when the goroutine lands on the main thread
// it keeps it (locked, so that no other goroutine can run there) while
// another goroutine, necessarily on another thread, does the work, and
// then gives it back unchanged.
func startLowPriority(cmd *exec.Cmd) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if unix.Gettid() == unix.Getpid() {
			defer runtime.UnlockOSThread()
			errc <- startLowPriority(cmd)
			return
		}
		// No UnlockOSThread: the thread keeps the low priority and must
		// end with this goroutine.
		if err := lowerThreadPriority(); err != nil {
			errc <- err
			return
		}
		errc <- cmd.Start()
	}()
	return <-errc
}

// lowerThreadPriority sets the calling thread's policy to SCHED_IDLE and
// its nice value to 19. Lowering one's own priority needs no privilege.
func lowerThreadPriority() error {
	if err := unix.Setpriority(unix.PRIO_PROCESS, 0, lowPriorityNice); err != nil {
		return fmt.Errorf("lower the priority of the worker's parent thread: setpriority: %w", err)
	}
	attr := &unix.SchedAttr{Policy: unix.SCHED_IDLE, Nice: lowPriorityNice}
	if err := unix.SchedSetAttr(0, attr, 0); err != nil {
		return fmt.Errorf("lower the priority of the worker's parent thread: sched_setattr SCHED_IDLE: %w", err)
	}
	return nil
}
