package audit

// SetCommitHook makes l call f at each step of a commit (see logHooks).
// Set it before the log is used concurrently.
func SetCommitHook(l *Log, f func(step string)) { l.hooks.commit = f }
