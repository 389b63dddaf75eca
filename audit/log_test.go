package audit_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyquorum/keyquorum/audit"
)

func TestAppend_EntriesReadBackInCanonicalForm(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	s := newSite(t, func(c *audit.Config) { c.Now = fixedClock(t0, time.Millisecond) })
	ctx := context.Background()
	fields := map[string]string{"op": "sign", "digest": strings.Repeat("ab", 32), "note": "a<b & \"c\"\n"}
	e, err := s.log.Append(ctx, audit.Record{Type: "sign.proposal", Fields: fields})
	if err != nil {
		t.Fatal(err)
	}
	fields["op"] = "changed after Append" // must not reach the log
	want := `{"v":1,"seq":0,"time":"2026-12-04T10:00:00.001Z","site":"site-a","type":"sign.proposal","fields":{"digest":"` + strings.Repeat("ab", 32) + `","note":"a<b & \"c\"\n","op":"sign"}}`
	if got := string(e.JSON()); got != want {
		t.Fatalf("entry JSON\n got %s\nwant %s", got, want)
	}
	if _, err := s.log.Append(ctx, audit.Record{Type: "node.stop"}); err != nil {
		t.Fatal(err)
	}
	got, err := s.log.Entry(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if string(got.JSON()) != want || got.Fields["op"] != "sign" || got.Seq != 0 || !got.Time.Equal(t0.Add(time.Millisecond)) {
		t.Fatalf("Entry(0) = %+v", got)
	}
	if got.Hash() != e.Hash() {
		t.Fatal("leaf hash differs between Append and Entry")
	}
	e1, err := s.log.Entry(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if e1.Type != "node.stop" || e1.Fields != nil || string(e1.JSON()) != `{"v":1,"seq":1,"time":"2026-12-04T10:00:00.002Z","site":"site-a","type":"node.stop"}` {
		t.Fatalf("Entry(1) = %s", e1.JSON())
	}
	if _, err := s.log.Entry(ctx, 2); !errors.Is(err, audit.ErrNotFound) {
		t.Fatalf("Entry(2) = %v, want ErrNotFound", err)
	}
	parsed, err := audit.ParseEntry(e1.JSON())
	if err != nil || parsed.Seq != 1 {
		t.Fatalf("ParseEntry of an exported entry: %v", err)
	}
}

func TestAppend_TimesNeverGoBackwards(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	times := []time.Time{t0, t0.Add(-time.Hour), t0.Add(time.Second)}
	i := 0
	s := newSite(t, func(c *audit.Config) {
		c.Now = func() time.Time { i++; return times[i-1] }
	})
	s.appendN(t, 3)
	tail, err := s.log.Tail(context.Background(), 3)
	if err != nil {
		t.Fatal(err)
	}
	if !tail[1].Time.Equal(t0) || !tail[2].Time.Equal(t0.Add(time.Second)) {
		t.Fatalf("times %v, %v, %v: a clock stepping back must not reorder entry times", tail[0].Time, tail[1].Time, tail[2].Time)
	}
}

func TestAppend_RejectsInvalidRecords(t *testing.T) {
	s := newSite(t)
	ctx := context.Background()
	long := strings.Repeat("x", audit.MaxFieldValueLen+1)
	many := map[string]string{}
	for i := range audit.MaxFields + 1 {
		many[strings.Repeat("f", 1+i%60)+string(rune('a'+i/60))] = "v"
	}
	big := map[string]string{}
	for i := range 20 {
		big[string(rune('a'+i))] = strings.Repeat("y", audit.MaxFieldValueLen)
	}
	for _, tc := range []struct {
		name string
		rec  audit.Record
	}{
		{"empty type", audit.Record{}},
		{"upper-case type", audit.Record{Type: "Sign"}},
		{"type with space", audit.Record{Type: "sign proposal"}},
		{"long type", audit.Record{Type: strings.Repeat("a", audit.MaxNameLen+1)}},
		{"bad field name", audit.Record{Type: "t", Fields: map[string]string{"Key": "v"}}},
		{"empty field name", audit.Record{Type: "t", Fields: map[string]string{"": "v"}}},
		{"long value", audit.Record{Type: "t", Fields: map[string]string{"k": long}}},
		{"invalid UTF-8", audit.Record{Type: "t", Fields: map[string]string{"k": "\xff"}}},
		{"too many fields", audit.Record{Type: "t", Fields: many}},
		{"entry too large", audit.Record{Type: "t", Fields: big}},
		{"detail without sealer", audit.Record{Type: "t", Detail: []byte("intent")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s.log.Append(ctx, tc.rec); !errors.Is(err, audit.ErrInvalidEntry) {
				t.Fatalf("Append = %v, want ErrInvalidEntry", err)
			}
		})
	}
	if s.log.Size() != 0 {
		t.Fatalf("size %d after refused appends", s.log.Size())
	}
}

func TestParseEntry_RejectsOtherEncodings(t *testing.T) {
	good := `{"v":1,"seq":3,"time":"2026-12-04T10:00:00.5Z","site":"site-a","type":"t","fields":{"a":"1","b":"2"}}`
	if _, err := audit.ParseEntry([]byte(good)); err != nil {
		t.Fatalf("canonical entry refused: %v", err)
	}
	for name, bad := range map[string]string{
		"whitespace":        `{"v":1, "seq":3,"time":"2026-12-04T10:00:00.5Z","site":"site-a","type":"t","fields":{"a":"1","b":"2"}}`,
		"member order":      `{"seq":3,"v":1,"time":"2026-12-04T10:00:00.5Z","site":"site-a","type":"t","fields":{"a":"1","b":"2"}}`,
		"field order":       `{"v":1,"seq":3,"time":"2026-12-04T10:00:00.5Z","site":"site-a","type":"t","fields":{"b":"2","a":"1"}}`,
		"duplicate field":   `{"v":1,"seq":3,"time":"2026-12-04T10:00:00.5Z","site":"site-a","type":"t","fields":{"a":"1","a":"1","b":"2"}}`,
		"trailing zero":     `{"v":1,"seq":3,"time":"2026-12-04T10:00:00.50Z","site":"site-a","type":"t","fields":{"a":"1","b":"2"}}`,
		"time zone":         `{"v":1,"seq":3,"time":"2026-12-04T11:00:00.5+01:00","site":"site-a","type":"t","fields":{"a":"1","b":"2"}}`,
		"escaped letter":    `{"v":1,"seq":3,"time":"2026-12-04T10:00:00.5Z","site":"site-\u0061","type":"t","fields":{"a":"1","b":"2"}}`,
		"empty fields":      `{"v":1,"seq":3,"time":"2026-12-04T10:00:00.5Z","site":"site-a","type":"t","fields":{}}`,
		"unknown member":    `{"v":1,"seq":3,"time":"2026-12-04T10:00:00.5Z","site":"site-a","type":"t","x":1}`,
		"version 2":         `{"v":2,"seq":3,"time":"2026-12-04T10:00:00.5Z","site":"site-a","type":"t"}`,
		"number field":      `{"v":1,"seq":3,"time":"2026-12-04T10:00:00.5Z","site":"site-a","type":"t","fields":{"a":1}}`,
		"two objects":       good + good,
		"newline after":     good + "\n",
		"bad detail hash":   `{"v":1,"seq":3,"time":"2026-12-04T10:00:00.5Z","site":"site-a","type":"t","detail":{"id":"00000000000000000000000000000000","sha256":"zz","size":3}}`,
		"site with a space": `{"v":1,"seq":3,"time":"2026-12-04T10:00:00.5Z","site":"site a","type":"t"}`,
	} {
		if _, err := audit.ParseEntry([]byte(bad)); !errors.Is(err, audit.ErrCorrupted) {
			t.Errorf("%s: ParseEntry = %v, want ErrCorrupted", name, err)
		}
	}
}

func TestOpen_ReopensAndContinues(t *testing.T) {
	s := newSite(t)
	s.appendN(t, 7)
	s.checkpoint(t)
	s.appendN(t, 5)
	s.reopen(t)
	if n := s.log.Size(); n != 12 {
		t.Fatalf("size after reopen %d, want 12", n)
	}
	s.appendN(t, 3)
	// The caches are rebuilt if they are lost.
	s.close(t)
	dropCaches(t, s.dir)
	s.open(t)
	s.appendN(t, 1)
	cp := s.checkpoint(t)
	if cp.Size != 16 {
		t.Fatalf("checkpoint size %d, want 16", cp.Size)
	}
	if _, err := s.verify(t, audit.VerifyOptions{}); err != nil {
		t.Fatal(err)
	}
	e, err := s.log.Entry(context.Background(), 15)
	if err != nil || e.Fields["n"] != "15" {
		t.Fatalf("Entry(15) = %+v, %v", e, err)
	}
}

func TestOpen_OneWriterAtATime(t *testing.T) {
	s := newSite(t)
	if _, err := audit.Open(s.dir, s.cfg); !errors.Is(err, audit.ErrLocked) {
		t.Fatalf("second Open = %v, want ErrLocked", err)
	}
	// A reader does not need the lock.
	r, err := audit.OpenReadOnly(s.dir, s.verifier(t))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.Append(context.Background(), audit.Record{Type: "t"}); !errors.Is(err, audit.ErrReadOnly) {
		t.Fatalf("Append on a read-only log = %v, want ErrReadOnly", err)
	}
}

func TestOpen_RefusesFilesOpenToOthersAndSymlinks(t *testing.T) {
	t.Run("directory mode", func(t *testing.T) {
		s := newSite(t)
		s.close(t)
		if err := os.Chmod(s.dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if _, err := audit.Open(s.dir, s.cfg); !errors.Is(err, audit.ErrInsecurePath) {
			t.Fatalf("Open = %v, want ErrInsecurePath", err)
		}
	})
	t.Run("file mode", func(t *testing.T) {
		s := newSite(t)
		s.close(t)
		if err := os.Chmod(filepath.Join(s.dir, "entries"), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := audit.Open(s.dir, s.cfg); !errors.Is(err, audit.ErrInsecurePath) {
			t.Fatalf("Open = %v, want ErrInsecurePath", err)
		}
	})
	t.Run("symlinked file", func(t *testing.T) {
		s := newSite(t)
		s.appendN(t, 1)
		s.close(t)
		// Another user plants a link so the site writes where they choose.
		elsewhere := filepath.Join(t.TempDir(), "elsewhere")
		if err := os.WriteFile(elsewhere, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		checkpoints := filepath.Join(s.dir, "checkpoints")
		if err := os.Remove(checkpoints); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(elsewhere, checkpoints); err != nil {
			t.Fatal(err)
		}
		if _, err := audit.Open(s.dir, s.cfg); !errors.Is(err, audit.ErrInsecurePath) {
			t.Fatalf("Open = %v, want ErrInsecurePath", err)
		}
	})
	t.Run("symlinked directory", func(t *testing.T) {
		s := newSite(t)
		s.close(t)
		link := filepath.Join(t.TempDir(), "link")
		if err := os.Symlink(s.dir, link); err != nil {
			t.Fatal(err)
		}
		if _, err := audit.Open(link, s.cfg); !errors.Is(err, audit.ErrInsecurePath) {
			t.Fatalf("Open = %v, want ErrInsecurePath", err)
		}
	})
	t.Run("new files are private", func(t *testing.T) {
		s := newSite(t)
		s.appendN(t, 1)
		s.checkpoint(t)
		st, err := os.Stat(s.dir)
		if err != nil || st.Mode().Perm() != 0o700 {
			t.Fatalf("directory mode %v, %v; want 0700", st.Mode().Perm(), err)
		}
		for _, name := range []string{"lock", "entries", "checkpoints", "index", "hashes"} {
			st, err := os.Stat(filepath.Join(s.dir, name))
			if err != nil || st.Mode().Perm() != 0o600 {
				t.Fatalf("%s mode %v, %v; want 0600", name, st.Mode().Perm(), err)
			}
		}
	})
}

func TestOpen_RejectsInvalidConfig(t *testing.T) {
	dir := t.TempDir()
	key := newKey(t)
	for name, cfg := range map[string]audit.Config{
		"no origin":      {Site: "s", Signer: key},
		"origin colon":   {Origin: "libp2p-tls-handshake:x", Site: "s", Signer: key},
		"origin plus":    {Origin: "a+b", Site: "s", Signer: key},
		"origin space":   {Origin: "a b", Site: "s", Signer: key},
		"no site":        {Origin: originA, Signer: key},
		"no signer":      {Origin: originA, Site: "s"},
		"negative batch": {Origin: originA, Site: "s", Signer: key, MaxBatch: -1},
	} {
		if _, err := audit.Open(filepath.Join(dir, "x"), cfg); !errors.Is(err, audit.ErrInvalidConfig) {
			t.Errorf("%s: Open = %v, want ErrInvalidConfig", name, err)
		}
	}
}

func TestOpen_CutsTornTail(t *testing.T) {
	// Build a log of 5 entries, checkpointed at 4, whose last record is
	// then torn at every possible length, as a crash during its write
	// leaves it.
	base := newSite(t)
	base.appendN(t, 4)
	base.checkpoint(t)
	base.appendN(t, 1)
	base.close(t)
	entries := filepath.Join(base.dir, "entries")
	full, err := os.ReadFile(entries)
	if err != nil {
		t.Fatal(err)
	}
	offs := recordOffsets(t, entries)
	last := offs[len(offs)-1]
	check := func(t *testing.T, content []byte, wantSize uint64) {
		t.Helper()
		if err := os.WriteFile(entries, content, 0o600); err != nil {
			t.Fatal(err)
		}
		base.open(t)
		defer base.close(t)
		if n := base.log.Size(); n != wantSize {
			t.Fatalf("size %d after recovery, want %d", n, wantSize)
		}
		if _, err := base.verify(t, audit.VerifyOptions{}); err != nil {
			t.Fatalf("Verify after recovery: %v", err)
		}
		st, _ := os.Stat(entries)
		if st.Size() != last && wantSize == 4 {
			t.Fatalf("entries file is %d bytes after recovery, want %d (torn record cut)", st.Size(), last)
		}
	}
	// Every cut inside the header, and cuts inside the body and CRC.
	end := int64(len(full))
	cuts := []int64{(last + end) / 2, end - 4, end - 1}
	for cut := last + 1; cut <= last+10; cut++ {
		cuts = append(cuts, cut)
	}
	for _, cut := range cuts {
		check(t, full[:cut], 4)
	}
	// The data of an extended file never reached the disk.
	check(t, append(bytes.Clone(full[:last]), make([]byte, 300)...), 4)
	// The last record is complete in length but its bytes are wrong.
	bad := bytes.Clone(full)
	bad[len(bad)-10] ^= 0x40
	check(t, bad, 4)
	// And the intact log still opens with all five.
	check(t, full, 5)
}

func TestOpen_RefusesDamageBelowTheLastCheckpoint(t *testing.T) {
	s := newSite(t)
	s.appendN(t, 5)
	s.checkpoint(t)
	s.close(t)
	entries := filepath.Join(s.dir, "entries")
	full, err := os.ReadFile(entries)
	if err != nil {
		t.Fatal(err)
	}
	offs := recordOffsets(t, entries)
	t.Run("torn covered record", func(t *testing.T) {
		// The last entry is covered by the checkpoint, so a torn record
		// there is loss, not a crash artefact.
		if err := os.WriteFile(entries, full[:offs[4]+20], 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := audit.Open(s.dir, s.cfg); !errors.Is(err, audit.ErrCorrupted) {
			t.Fatalf("Open = %v, want ErrCorrupted", err)
		}
	})
	t.Run("damaged middle record", func(t *testing.T) {
		bad := bytes.Clone(full)
		bad[offs[2]+15] ^= 1
		if err := os.WriteFile(entries, bad, 0o600); err != nil {
			t.Fatal(err)
		}
		dropCaches(t, s.dir)
		if _, err := audit.Open(s.dir, s.cfg); !errors.Is(err, audit.ErrCorrupted) {
			t.Fatalf("Open = %v, want ErrCorrupted", err)
		}
	})
}

func TestAppend_ContextEndsBeforeCommit(t *testing.T) {
	s := newSite(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.log.Append(ctx, audit.Record{Type: "t"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Append = %v, want context.Canceled", err)
	}
	if s.log.Size() != 0 {
		t.Fatal("a cancelled append was written")
	}
}

func TestAppend_ConcurrentAppendsAllLand(t *testing.T) {
	s := newSite(t)
	const workers, each = 16, 20
	var wg sync.WaitGroup
	seen := make([]bool, workers*each)
	var mu sync.Mutex
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				e, err := s.log.Append(context.Background(), audit.Record{Type: "t", Fields: map[string]string{"w": string(rune('a' + w))}})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if seen[e.Seq] {
					t.Errorf("sequence number %d given twice", e.Seq)
				}
				seen[e.Seq] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if n := s.log.Size(); n != workers*each {
		t.Fatalf("size %d, want %d", n, workers*each)
	}
	st := s.log.Stats()
	if st.Appends != workers*each || st.Commits == 0 || st.Commits > st.Appends {
		t.Fatalf("stats %+v", st)
	}
	s.checkpoint(t)
	if _, err := s.verify(t, audit.VerifyOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestClose_FailsLaterAppends(t *testing.T) {
	s := newSite(t)
	l := s.log
	s.close(t)
	if _, err := l.Append(context.Background(), audit.Record{Type: "t"}); !errors.Is(err, audit.ErrAppendFailed) || !errors.Is(err, audit.ErrClosed) {
		t.Fatalf("Append after Close = %v, want ErrAppendFailed and ErrClosed", err)
	}
	if err := l.Healthy(); !errors.Is(err, audit.ErrAppendFailed) {
		t.Fatalf("Healthy after Close = %v, want ErrAppendFailed", err)
	}
	if _, err := l.Checkpoint(context.Background()); !errors.Is(err, audit.ErrClosed) {
		t.Fatalf("Checkpoint after Close = %v, want ErrClosed", err)
	}
}

func TestRunCheckpoints_PeriodicAndAtShutdown(t *testing.T) {
	s := newSite(t)
	s.appendN(t, 2)
	ctx, cancel := context.WithCancel(context.Background())
	reported := make(chan *audit.Checkpoint, 100)
	done := make(chan error, 1)
	go func() {
		done <- s.log.RunCheckpoints(ctx, 10*time.Millisecond, func(c *audit.Checkpoint, err error) {
			if err != nil {
				t.Error(err)
				return
			}
			reported <- c
		})
	}()
	if c := <-reported; c.Size != 2 {
		t.Fatalf("first checkpoint at size %d, want 2", c.Size)
	}
	s.appendN(t, 3)
	cancel() // shutdown: one more checkpoint, at the final size
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var last *audit.Checkpoint
	for len(reported) > 0 {
		last = <-reported
	}
	if last == nil || last.Size != 5 || s.log.LatestCheckpoint().Size != 5 {
		t.Fatalf("last checkpoint %+v, want size 5", last)
	}
	// Nothing new: no new signature.
	n := len(s.log.Checkpoints())
	ctx2, cancel2 := context.WithCancel(context.Background())
	cancel2()
	if err := s.log.RunCheckpoints(ctx2, time.Hour, nil); err != nil {
		t.Fatal(err)
	}
	if len(s.log.Checkpoints()) != n {
		t.Fatal("a checkpoint was signed for an unchanged log")
	}
	if err := s.log.RunCheckpoints(ctx2, 0, nil); !errors.Is(err, audit.ErrInvalidConfig) {
		t.Fatalf("interval 0: %v", err)
	}
}
