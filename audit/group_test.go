package audit

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// TestGroupCommit_ConcurrentAppendsShareOneSync holds the commit token
// while appends queue up, so the next commit takes all of them: one write
// and one fdatasync for the whole batch (up to MaxBatch).
func TestGroupCommit_ConcurrentAppendsShareOneSync(t *testing.T) {
	for _, tc := range []struct {
		maxBatch, appends int
		wantCommits       uint64
	}{
		{0, 40, 1},  // default MaxBatch: one commit
		{16, 40, 3}, // 16 + 16 + 8
		{1, 10, 10}, // group commit off
	} {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		l, err := Open(filepath.Join(t.TempDir(), "audit"), Config{Origin: "keyquorum.example/site-a", Site: "site-a", Signer: key, MaxBatch: tc.maxBatch})
		if err != nil {
			t.Fatal(err)
		}
		l.flushTok <- struct{}{} // a commit "in progress"
		var wg sync.WaitGroup
		for range tc.appends {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := l.Append(context.Background(), Record{Type: "t"}); err != nil {
					t.Error(err)
				}
			}()
		}
		for {
			l.mu.Lock()
			n := len(l.pending)
			l.mu.Unlock()
			if n == tc.appends {
				break
			}
			time.Sleep(time.Millisecond)
		}
		<-l.flushTok
		wg.Wait()
		st := l.Stats()
		if st.Appends != uint64(tc.appends) || st.Commits != tc.wantCommits {
			t.Errorf("MaxBatch %d, %d appends: stats %+v, want %d commits", tc.maxBatch, tc.appends, st, tc.wantCommits)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
